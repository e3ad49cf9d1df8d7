import type { ChainableCommander, Redis } from 'ioredis'

/** Runs a pipeline and returns its results, throwing the first command error. */
export async function execPipeline (pipeline: ChainableCommander): Promise<unknown[]> {
  const results = await pipeline.exec()
  if (results === null) throw new Error('pipeline was discarded')
  return results.map(([error, value]) => {
    if (error !== null) throw error
    return value
  })
}

/** Quits politely when connected; otherwise stops reconnecting at once. */
export async function closeConnection (redis: Redis): Promise<void> {
  if (redis.status === 'end') return
  if (redis.status !== 'ready') {
    redis.disconnect()
    return
  }
  await redis.quit().catch(() => redis.disconnect())
}
