import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ChannelHub } from './channel-hub.js'
import type { Transport } from '../../metrics.js'
import { ConnectionActor } from './connection-actor.js'
import type { Sink } from './sink.js'

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

/**
 * Opens a client connection on either engine: a connection actor on `sink` with the
 * gateway's settings, registered with the hub, and unregistered when it closes (then
 * `onClose` runs, e.g. to free its connection slot).
 */
export function openConnection (app: FastifyInstance, sink: Sink, transport: Transport, onClose: (actor: ConnectionActor) => void): ConnectionActor {
  const { config, now, metrics } = app.pulse
  const hub = app.streaming
  const actor = new ConnectionActor(sink, {
    debounceMs: config.debounceMs,
    stallLimitMs: stallLimitMs(config.heartbeatMs),
    now,
    transport,
    observer: metrics?.connectionObserver(transport),
    onClose: (closed) => {
      hub.remove(closed)
      onClose(closed)
    }
  })
  hub.add(actor)
  return actor
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
