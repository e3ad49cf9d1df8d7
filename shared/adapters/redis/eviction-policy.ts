import { Cluster, type Redis } from 'ioredis'
import { closeConnection, openRedis, type RedisClient, type RedisTarget } from './connection.js'

/** The only `maxmemory-policy` under which Redis never drops Pulse's keys (BullMQ needs it too). */
export const REQUIRED_EVICTION_POLICY = 'noeviction'

const WHY = 'every Pulse key has a TTL, so under any other policy a full Redis may evict dirty buckets not yet archived, dedupe slices or queued batches (BullMQ requires noeviction too)'

async function policyOf (node: Redis): Promise<string> {
  const reply = await node.call('CONFIG', 'GET', 'maxmemory-policy') as string[]
  return reply[1] ?? '?'
}

/**
 * Reads `maxmemory-policy` from the Redis node, or from every master of a cluster, and
 * returns why Pulse must not start on it, or `undefined` when every node runs `noeviction`.
 * A server that refuses `CONFIG` (managed services often do) is a problem too: the message
 * says how an operator who knows the policy vouches for it.
 */
export async function evictionPolicyProblem (redis: RedisClient): Promise<string | undefined> {
  const nodes: Redis[] = redis instanceof Cluster ? redis.nodes('master') : [redis]
  for (const node of nodes) {
    const where = `${node.options.host ?? '?'}:${node.options.port ?? '?'}`
    let policy: string
    try {
      policy = await policyOf(node)
    } catch (err) {
      return `could not read maxmemory-policy from Redis ${where} (${(err as Error).message}); Pulse needs ${REQUIRED_EVICTION_POLICY}: ${WHY}. If the service hides CONFIG and is set to ${REQUIRED_EVICTION_POLICY}, set REDIS_EVICTION_CHECK=skip`
    }
    if (policy !== REQUIRED_EVICTION_POLICY) {
      return `Redis ${where} runs maxmemory-policy ${policy}; Pulse needs ${REQUIRED_EVICTION_POLICY}: ${WHY}. Set maxmemory-policy ${REQUIRED_EVICTION_POLICY} on the server`
    }
  }
  return undefined
}

/** Stops the start when Redis may evict Pulse's keys (see {@link evictionPolicyProblem}). */
export async function refuseEvictingRedis (target: RedisTarget): Promise<void> {
  // Waits for Redis like the other connections do: only an answer decides.
  const redis = openRedis(target, { maxRetriesPerRequest: null })
  redis.on('error', () => {})
  try {
    // A cluster client knows its masters once it has read the slot map.
    if (redis instanceof Cluster && redis.status !== 'ready') {
      await new Promise<void>((resolve, reject) => {
        redis.once('ready', resolve)
        redis.once('end', () => reject(new Error('could not reach the Redis Cluster')))
      })
    }
    const problem = await evictionPolicyProblem(redis)
    if (problem !== undefined) throw new Error(problem)
  } finally {
    await closeConnection(redis)
  }
}
