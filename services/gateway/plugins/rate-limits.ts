import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { closeConnection, openRedis, type RedisClient } from '../../../shared/adapters/redis/connection.js'
import { PulseError } from '../../../shared/errors.js'

/**
 * Per-IP rate limits (`@fastify/rate-limit`); each route sets its own `config.rateLimit`.
 * In cluster mode the counters live in Redis, so a client's budget is shared by every
 * gateway behind the load balancer rather than multiplied by their number (on a Redis
 * Cluster each client's counter is one key, on the node of its own slot). If Redis does
 * not answer, requests pass: the limit protects the service, it must not take it down.
 */
async function rateLimits (app: FastifyInstance): Promise<void> {
  const { config } = app.pulse
  let redis: RedisClient | undefined
  if (config.redisUrl !== undefined) {
    // Fail fast rather than queue: a rate-limit check must not wait out a Redis outage.
    redis = openRedis({ url: config.redisUrl, cluster: config.redisCluster }, { connectTimeout: 500, maxRetriesPerRequest: 1, enableOfflineQueue: false })
    redis.on('error', (err: unknown) => app.log.debug({ err }, 'rate-limit redis'))
    const connection = redis
    app.addHook('onClose', async () => await closeConnection(connection))
  }
  await app.register(rateLimit, {
    global: false,
    ...(redis === undefined ? {} : { redis, nameSpace: `pulse:${config.env}:rl:`, skipOnError: true }),
    errorResponseBuilder: (_request, limit) => new PulseError('PULSE_ERR_RATE_LIMITED', `Too many requests: at most ${limit.max} per ${limit.after}`)
  })
}

export default fp(rateLimits, { name: 'pulse-rate-limits', fastify: '5.x' })
