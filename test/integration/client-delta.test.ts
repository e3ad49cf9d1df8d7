import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import WebSocket from 'ws'
import { type Bucket, connect, type WebSocketConstructor } from '../../web/client/src/index.js'
import { clearOfMinuteBoundary, eventually, startTestPulse } from '../helpers/pulse.js'
import { engineUnavailable, ENGINES } from '../helpers/stream-clients.js'

/*
 * The delta encoding end to end, on both engines: the SDK negotiates it and, applying
 * deltas, holds exactly the gateway's states; a plain WebSocket client and an event stream
 * keep full states; an unknown encoding is refused before the upgrade.
 */

/** `ws`, recording the URL it opened and every message it received. */
function recordingWebSocket (urls: string[], received: Array<{ type: string }>): WebSocketConstructor {
  return class extends WebSocket {
    constructor (url: string) {
      super(url)
      urls.push(url)
      this.on('message', (data) => { received.push(JSON.parse(String(data)) as { type: string }) })
    }
  } as unknown as WebSocketConstructor
}

function item (id: string, ts: number, score: number, source: string): Record<string, unknown> {
  return { id, ticker: 'AAPL', timestamp: new Date(ts).toISOString(), score, source }
}

/** A bucket as compared: the time-derived progress left out. */
function stored (bucket: Bucket): Record<string, unknown> {
  const { progress_pct: _progress, ...rest } = bucket
  return rest
}

for (const engine of ENGINES) {
  t.test(`${engine}: the SDK negotiates deltas and holds the server's states; plain WebSocket and SSE clients get full states`, { skip: engineUnavailable(engine) }, async (t) => {
    const p = await startTestPulse(t, { GATEWAY_ENGINE: engine })
    const urls: string[] = []
    const received: Array<{ type: string }> = []
    const client = connect({ url: p.url, WebSocket: recordingWebSocket(urls, received) })
    t.teardown(() => client.close())
    const latest = new Map<string, Bucket>()
    const sub = client.subscribe('AAPL', ['1m', '1h'], (bucket) => latest.set(`${bucket.resolution}@${bucket.timestamp}`, bucket))
    await sub.ready

    // A plain WebSocket client and an event stream, watching the same series.
    const plain: Array<{ type: string }> = []
    const socket = new WebSocket(`${p.url.replace('http', 'ws')}/api/v2/ws?tickers=AAPL&resolutions=1m,1h`)
    t.teardown(() => socket.close())
    socket.on('message', (data) => plain.push(JSON.parse(String(data)) as { type: string }))
    await new Promise((resolve) => socket.once('open', resolve))
    const sse = new AbortController()
    t.teardown(() => sse.abort())
    const stream = await fetch(`${p.url}/api/v2/stream?tickers=AAPL&resolutions=1m,1h`, { signal: sse.signal })
    let sseText = ''
    const reading = (async () => {
      const decoder = new TextDecoder()
      for await (const chunk of stream.body as unknown as AsyncIterable<Uint8Array>) sseText += decoder.decode(chunk)
    })().catch(() => {})
    await sleep(200)

    await clearOfMinuteBoundary(8000)
    const sources = ['tiingo', 'finnhub', 'reuters']
    for (let i = 0; i < 8; i++) {
      t.equal((await p.post([item(`d${i}`, Date.now() - (i % 3) * 1000, Math.round(Math.sin(i) * 100) / 100, sources[i % 3] as string)])).status, 202)
      await sleep(300)
    }
    const history = await Promise.all((['1m', '1h'] as const).map(async (resolution) => await client.history('AAPL', resolution)))
    const server = history.flatMap((h) => [...h.buckets, ...h.partial_bucket === null ? [] : [h.partial_bucket]])
    await eventually(() => server.every((b) => latest.get(`${b.resolution}@${b.timestamp}`)?.rev === b.rev) ? true : undefined, 10_000, 'the SDK to hold the server states')
    for (const bucket of server) t.same(stored(latest.get(`${bucket.resolution}@${bucket.timestamp}`) as Bucket), stored(bucket), `${bucket.resolution}@${bucket.timestamp} whole, as the server has it`)

    t.ok(urls.every((url) => new URL(url).searchParams.get('encoding') === 'delta'), 'the SDK asks for deltas')
    const deltas = received.filter((m) => m.type === 'bucket_delta').length
    t.ok(deltas >= 4, `the SDK got deltas (${deltas} of ${received.filter((m) => m.type.includes('bucket')).length} bucket messages)`)
    await eventually(() => plain.filter((m) => m.type === 'partial_bucket').length >= 8 ? true : undefined, 5000, 'the plain client\'s states')
    t.same(plain.filter((m) => m.type === 'bucket_delta'), [], 'a plain WebSocket client gets full states')
    await eventually(() => (sseText.match(/event: partial_bucket/g) ?? []).length >= 8 ? true : undefined, 5000, 'the event stream\'s states')
    t.notOk(sseText.includes('bucket_delta'), 'an event stream gets full states')
    sse.abort()
    await reading

    const refused = await new Promise<{ status: number, body: string }>((resolve, reject) => {
      const attempt = new WebSocket(`${p.url.replace('http', 'ws')}/api/v2/ws?encoding=zip`)
      attempt.on('unexpected-response', (_req, res) => {
        let body = ''
        res.on('data', (chunk: Buffer) => { body += String(chunk) })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      attempt.on('open', () => reject(new Error('upgraded')))
      attempt.on('error', () => {})
    })
    t.equal(refused.status, 400, 'an unknown encoding is refused before the upgrade')
    t.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'PULSE_ERR_BAD_ENCODING')
  })
}

/** `ws` that loses the first `bucket_delta` it receives (as a buggy proxy might) and records what the client sends. */
function lossyWebSocket (sent: Array<{ op: string }>, lost: Array<{ type: string }>): WebSocketConstructor {
  type Listen = (type: string, listener: (event: { data?: unknown }) => void) => void
  return class extends WebSocket {
    constructor (url: string) {
      super(url)
      const listen = this.addEventListener.bind(this) as unknown as Listen
      const lossy: Listen = (type, listener) => {
        listen(type, type !== 'message'
          ? listener
          : (event) => {
              const message = JSON.parse(String(event.data)) as { type: string }
              if (message.type === 'bucket_delta' && lost.length === 0) lost.push(message)
              else listener(event)
            })
      }
      Object.assign(this, { addEventListener: lossy })
    }

    override send (data: string): void {
      sent.push(JSON.parse(data) as { op: string })
      super.send(data)
    }
  } as unknown as WebSocketConstructor
}

t.test('a delta against a state the SDK does not hold: the SDK reads the series afresh and ends with the server\'s states', async (t) => {
  const p = await startTestPulse(t)
  const sent: Array<{ op: string }> = []
  const lost: Array<{ type: string }> = []
  const client = connect({ url: p.url, WebSocket: lossyWebSocket(sent, lost) })
  t.teardown(() => client.close())
  const latest = new Map<string, Bucket>()
  const sub = client.subscribe('AAPL', ['1m'], (bucket) => latest.set(bucket.timestamp, bucket))
  await sub.ready
  await clearOfMinuteBoundary(8000)
  const snapshotsBefore = sent.filter((m) => m.op === 'snapshot').length
  for (let i = 0; i < 6; i++) {
    t.equal((await p.post([item(`g${i}`, Date.now(), (i % 5) / 5 - 0.4, 'tiingo')])).status, 202)
    await sleep(300)
  }
  t.equal(lost.length, 1, 'one delta was lost on the way')
  const history = await client.history('AAPL', '1m')
  const server = [...history.buckets, ...history.partial_bucket === null ? [] : [history.partial_bucket]]
  await eventually(() => server.every((b) => latest.get(b.timestamp)?.rev === b.rev) ? true : undefined, 10_000, 'the SDK to hold the server states')
  for (const bucket of server) t.same(stored(latest.get(bucket.timestamp) as Bucket), stored(bucket), `${bucket.timestamp} whole, as the server has it`)
  t.ok(sent.filter((m) => m.op === 'snapshot').length > snapshotsBefore, 'the next delta found no base: the SDK asked for a snapshot')
})
