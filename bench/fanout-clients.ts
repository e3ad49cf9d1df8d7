/**
 * Child process of the fan-out benchmark, the same load client for every gateway: opens
 * `count` real clients, spread over the given gateways — `ws` WebSockets for Pulse and the
 * bare ws peer, `socket.io-client` (WebSocket transport) for the Socket.IO peer — and
 * records, for each bucket update, receipt time minus `accepted_at` (when it was
 * published), and counts updates and their bytes (a `bucket_delta` carries no
 * `accepted_at`: counted, not timed). Talks to the parent over IPC: `ready` when all are
 * open, the counts and the histogram on `stop`.
 */
import hdr from 'hdr-histogram-js'
import { io, type Socket } from 'socket.io-client'
import WebSocket from 'ws'

interface Start {
  /** WebSocket URLs (ws) or HTTP base URLs (socketio); clients take them in turn. */
  urls: string[]
  count: number
  protocol: 'ws' | 'socketio'
  /** Socket.IO event name of an update. */
  event?: string
}

const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000, numberOfSignificantValueDigits: 3 })
const closers: Array<() => void> = []
let events = 0
let bytes = 0
let recording = false

const ACCEPTED_AT = '"accepted_at":'
const DELTA = '"type":"bucket_delta"'

/**
 * Records one message's latency. Only bucket updates carry `accepted_at`; it is found and
 * read in the received bytes, without decoding or parsing the message, so the client's
 * own cost per message stays far below the gateways' (it shares their two cores).
 */
function record (message: Buffer | string): void {
  if (!recording) return
  const at = message.indexOf(ACCEPTED_AT)
  if (at < 0) {
    if (message.indexOf(DELTA) >= 0) {
      events++
      bytes += message.length
    }
    return
  }
  bytes += message.length
  let acceptedAt = 0
  for (let i = at + ACCEPTED_AT.length; i < message.length; i++) {
    const digit = typeof message === 'string' ? message.charCodeAt(i) - 48 : (message[i] as number) - 48
    if (digit < 0 || digit > 9) break
    acceptedAt = acceptedAt * 10 + digit
  }
  events++
  histogram.recordValue(Math.max(1, Date.now() - acceptedAt))
}

async function openWs (url: string): Promise<void> {
  const socket = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true })
  socket.on('message', (data: Buffer) => record(data))
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
  })
  socket.on('error', () => {})
  closers.push(() => socket.terminate())
}

async function openSocketIo (url: string, event: string): Promise<void> {
  const socket: Socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true })
  socket.on(event, (text: string) => record(text))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('connect_error', reject)
  })
  closers.push(() => socket.disconnect())
}

process.on('message', (message: { op: 'start' } & Start | { op: 'record' } | { op: 'stop' }) => {
  if (message.op === 'start') {
    (async () => {
      const open = async (i: number): Promise<void> => {
        const url = message.urls[i % message.urls.length] as string
        if (message.protocol === 'socketio') await openSocketIo(url, message.event ?? 'update')
        else await openWs(url)
      }
      // Open in waves so the accept queue never overflows.
      for (let i = 0; i < message.count; i += 200) {
        const wave = Math.min(200, message.count - i)
        await Promise.all(Array.from({ length: wave }, async (_, j) => await open(i + j)))
      }
      process.send?.({ op: 'ready', open: closers.length })
    })().catch((err: unknown) => process.send?.({ op: 'failed', error: String(err) }))
  } else if (message.op === 'record') {
    recording = true
  } else {
    recording = false
    process.send?.({ op: 'result', events, bytes, histogram: hdr.encodeIntoCompressedBase64(histogram) }, () => {
      for (const close of closers) close()
      process.exit(0)
    })
  }
})
