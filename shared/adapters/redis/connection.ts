import type { ChainableCommander, Redis, RedisOptions } from 'ioredis'

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

/** Connection options of a `redis://` or `rediss://` URL, for clients that own their connections (BullMQ). */
export function redisOptionsFromUrl (url: string): RedisOptions {
  const parsed = new URL(url)
  const options: RedisOptions = { host: parsed.hostname, port: Number(parsed.port || 6379) }
  if (parsed.username !== '') options.username = decodeURIComponent(parsed.username)
  if (parsed.password !== '') options.password = decodeURIComponent(parsed.password)
  const db = parsed.pathname.replace(/^\//, '')
  if (db !== '') options.db = Number(db)
  if (parsed.protocol === 'rediss:') options.tls = {}
  return options
}
