/**
 * Child process of the fan-out benchmark: opens `count` real `ws` clients against the
 * gateway and records, for each bucket event, receipt time minus `accepted_at`.
 * Talks to the parent over IPC: `ready` when all are open, the histogram on `stop`.
 */
import hdr from 'hdr-histogram-js'
import WebSocket from 'ws'

interface Start { url: string, count: number, query: string }

const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000, numberOfSignificantValueDigits: 3 })
const sockets: WebSocket[] = []
let events = 0
let recording = false

async function open (url: string): Promise<WebSocket> {
  const socket = new WebSocket(url, { perMessageDeflate: false })
  socket.on('message', (data) => {
    if (!recording) return
    const text = data.toString()
    // Only bucket events carry accepted_at; a cheap scan avoids parsing heartbeats.
    const at = text.indexOf('"accepted_at":')
    if (at < 0) return
    const acceptedAt = Number.parseInt(text.slice(at + 14), 10)
    events++
    histogram.recordValue(Math.max(1, Date.now() - acceptedAt))
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
  })
  socket.on('error', () => {})
  return socket
}

process.on('message', (message: { op: 'start' } & Start | { op: 'record' } | { op: 'stop' }) => {
  if (message.op === 'start') {
    (async () => {
      const url = `${message.url.replace(/^http/, 'ws')}/api/v2/ws${message.query}`
      // Open in waves so the accept queue never overflows.
      for (let i = 0; i < message.count; i += 200) {
        const wave = Math.min(200, message.count - i)
        sockets.push(...await Promise.all(Array.from({ length: wave }, async () => await open(url))))
      }
      process.send?.({ op: 'ready', open: sockets.length })
    })().catch((err: unknown) => process.send?.({ op: 'failed', error: String(err) }))
  } else if (message.op === 'record') {
    recording = true
  } else {
    recording = false
    process.send?.({ op: 'result', events, histogram: hdr.encodeIntoCompressedBase64(histogram) }, () => {
      for (const socket of sockets) socket.terminate()
      process.exit(0)
    })
  }
})
