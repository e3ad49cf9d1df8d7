/**
 * Child process of the fan-out benchmark: a peer gateway to compare Pulse with, on the
 * same Redis and behind the same load client. `PEER=ws`: a bare `ws` server that
 * subscribes to one Redis channel and sends every message to each of its clients.
 * `PEER=socketio`: Socket.IO 4 with `@socket.io/redis-adapter`; clients join the room of
 * the series and the publisher broadcasts to it through the adapter.
 * Talks to the parent over IPC: `{url}` once it listens; collects garbage on `{op: "gc"}`.
 */
import { createServer } from 'node:http'
import { createAdapter } from '@socket.io/redis-adapter'
import { Redis } from 'ioredis'
import { Server as SocketIoServer } from 'socket.io'
import { WebSocketServer } from 'ws'

/** The Redis channel (bare ws) or Socket.IO room the benchmark publishes on, named by the parent. */
const PEER_CHANNEL = process.env.PEER_CHANNEL ?? 'bench'

async function startWsPeer (redisUrl: string): Promise<string> {
  const server = createServer()
  const wss = new WebSocketServer({ server, perMessageDeflate: false })
  const subscriber = new Redis(redisUrl)
  await subscriber.subscribe(PEER_CHANNEL)
  subscriber.on('message', (_channel: string, message: string) => {
    for (const client of wss.clients) client.send(message)
  })
  return await listen(server)
}

async function startSocketIoPeer (redisUrl: string): Promise<string> {
  const server = createServer()
  const io = new SocketIoServer(server, { transports: ['websocket'], perMessageDeflate: false, serveClient: false })
  io.adapter(createAdapter(new Redis(redisUrl), new Redis(redisUrl)))
  io.on('connection', (socket) => { socket.join(PEER_CHANNEL) })
  return await listen(server)
}

async function listen (server: ReturnType<typeof createServer>): Promise<string> {
  return await new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      resolve(`http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`)
    })
  })
}

const redisUrl = process.env.REDIS_URL ?? ''
const url = process.env.PEER === 'socketio' ? await startSocketIoPeer(redisUrl) : await startWsPeer(redisUrl)
process.send?.({ url, pid: process.pid })
process.on('message', (message: { op?: string }) => {
  if (message.op !== 'gc') return
  globalThis.gc?.()
  process.send?.({ op: 'gc' })
})
process.on('SIGTERM', () => process.exit(0))
