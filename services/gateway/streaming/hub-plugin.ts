import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ChannelHub } from './channel-hub.js'
import type { Transport } from '../../metrics.js'
import type { ConnectionOptions } from './connection-actor.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The streaming core shared by the WebSocket and SSE endpoints. */
    streaming: ChannelHub
  }
}

/**
 * How long a client may stay unwritable before it is disconnected: two heartbeats, so a
 * client that could not take two heartbeats in a row is treated as gone.
 */
export function stallLimitMs (heartbeatMs: number): number {
  return Math.max(1000, 2 * heartbeatMs)
}

/** Connection actor settings from the gateway configuration. */
export function connectionOptions (app: FastifyInstance, transport: Transport): Omit<ConnectionOptions, 'onClose'> {
  const { config, now, metrics } = app.pulse
  return { debounceMs: config.debounceMs, stallLimitMs: stallLimitMs(config.heartbeatMs), now, transport, observer: metrics?.connectionObserver(transport) }
}

async function hubPlugin (app: FastifyInstance): Promise<void> {
  const { config, cache, now } = app.pulse
  const hub = new ChannelHub({
    cache,
    now,
    maxConnections: config.maxConnections,
    heartbeatMs: config.heartbeatMs,
    onError: (err, series) => app.log.warn({ err, series }, 'channel subscription failed')
  })
  app.decorate('streaming', hub)
  // Before the server stops accepting: clients are told to reconnect while it still can.
  app.addHook('preClose', async () => hub.shutdown())
}

/** Creates `app.streaming`, the channel hub; register before the WS and SSE plugins. */
export default fp(hubPlugin, { name: 'pulse-streaming-hub', fastify: '5.x' })
