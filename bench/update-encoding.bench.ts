import { constants, createDeflateRaw, deflateRawSync, type DeflateRaw } from 'node:zlib'
import { MemoryHotState } from '../shared/adapters/memory/memory-hot-state.js'
import { type Bucket, labelFor, type ScoredItem } from '../shared/timeseries/bucket.js'
import { StreamEvent } from '../services/gateway/streaming/protocol.js'
import { DeltaMemory } from '../shared/stream-delta.js'
import { printTable } from './table.js'

/*
 * Bytes a client receives per bucket update, and the gateway's encoding CPU per delivered
 * update, for three encodings of the same stream of bucket states:
 *
 * - full: today's event, the whole bucket as JSON, rendered once per channel and shared by
 *   every watcher;
 * - delta: the gateway's `bucket_delta` (shared/stream-delta.ts), only the fields that changed
 *   since the state of that bucket the connection received last, rendered once per channel
 *   event and shared by every watcher that holds the base; each delta watcher also looks up
 *   and updates its memory of the last state received per bucket (per watcher, counted);
 * - permessage-deflate (RFC 7692) with context takeover: each connection compresses every
 *   message with its own deflate stream, so the work is per watcher, not per channel; and
 *   without context takeover, where a compressed message could be shared but each one starts
 *   from an empty dictionary.
 *
 * The stream: one ticker's items folded into its 8 resolutions by the embedded hot state,
 * every changed bucket an event. `BENCH_ITEMS` (default 3,000), `BENCH_WATCHERS` (watchers per
 * channel for the per-delivered-update CPU, default 1,000).
 */

const ITEMS = Number(process.env.BENCH_ITEMS ?? 3000)
const WATCHERS = Number(process.env.BENCH_WATCHERS ?? 1000)
const SOURCES = ['tiingo', 'finnhub', 'benzinga', 'reuters']

/** Every bucket state one ticker's items produce, in order, with the time each was sent. */
async function stateStream (): Promise<Array<{ bucket: Bucket, now: number }>> {
  const start = Date.parse('2026-12-07T09:30:00Z')
  const hot = new MemoryHotState({ dedupeWindowMs: 86_400_000, createdAt: start - 86_400_000 })
  const states: Array<{ bucket: Bucket, now: number }> = []
  for (let i = 0; i < ITEMS; i++) {
    const now = start + i * 2000
    const score = Math.round(Math.sin(i * 0.37) * 9000) / 10_000
    const item: ScoredItem = { id: `n${i}`, ticker: 'AAPL', ts: now - (i % 7) * 1000, score, label: labelFor(score), source: SOURCES[i % SOURCES.length] as string }
    let outcome = await hot.fold('AAPL', [item], { now })
    // A new hot state asks for its first term (the archive would grant it).
    if (outcome.kind === 'needs-term') outcome = await hot.fold('AAPL', [item], { now, term: { run: outcome.run, term: 1 } })
    if (outcome.kind !== 'applied') throw new Error(`the bench folds only new buckets: ${JSON.stringify(outcome).slice(0, 200)}`)
    for (const bucket of outcome.changed) states.push({ bucket, now })
  }
  return states
}

function cpuMicros (work: () => void): number {
  const before = process.cpuUsage()
  work()
  const used = process.cpuUsage(before)
  return used.user + used.system
}

const states = await stateStream()
const n = states.length

// Full JSON: one rendering per channel event, shared by every watcher.
let fullBytes = 0
const fullCpu = cpuMicros(() => {
  for (const { bucket, now } of states) fullBytes += new StreamEvent(bucket, 'change', now, bucket.rev - 1).render(now).wsBytes.length
})

// Delta: one rendering per channel event against the channel's previous state of that bucket
// (the first state of each bucket goes full), as the gateway renders it.
let deltaBytes = 0
const events = states.map(({ bucket, now }) => ({ event: new StreamEvent(bucket, 'change', now, bucket.rev - 1), now }))
const deltaCpu = cpuMicros(() => {
  const last = new DeltaMemory<Bucket>(64)
  for (const { event, now } of events) {
    event.deltaBase = last.get(event.key)
    last.touch(event.key, event.bucket)
    deltaBytes += (event.deltaBase === undefined ? event.render(now) : event.renderDelta(now)).wsBytes.length
  }
})
// What each delta watcher pays per delivered update: its memory of the last state per bucket.
const memoryCpu = cpuMicros(() => {
  for (let round = 0; round < 20; round++) {
    const received = new DeltaMemory<Bucket>()
    for (const { event } of events) {
      if (received.get(event.key) === event.deltaBase) received.touch(event.key, event.bucket)
      else received.touch(event.key, event.bucket)
    }
  }
}) / 20
// permessage-deflate with context takeover: one deflate stream per connection.
const messages = states.map(({ bucket, now }) => new StreamEvent(bucket, 'change', now, bucket.rev - 1).render(now).wsBytes)
async function deflateStream (stream: DeflateRaw, message: Buffer): Promise<number> {
  return await new Promise((resolve, reject) => {
    let bytes = 0
    const onData = (chunk: Buffer): void => { bytes += chunk.length }
    stream.on('data', onData)
    stream.write(message)
    stream.flush(constants.Z_SYNC_FLUSH, () => {
      stream.off('data', onData)
      // RFC 7692 drops the 4-byte 00 00 ff ff tail of each flushed message.
      resolve(bytes - 4)
    })
    stream.once('error', reject)
  })
}
const stream = createDeflateRaw({ windowBits: 15, memLevel: 8 })
stream.setMaxListeners(0)
let takeoverBytes = 0
const takeoverStarted = process.cpuUsage()
for (const message of messages) takeoverBytes += await deflateStream(stream, message)
const takeoverUsed = process.cpuUsage(takeoverStarted)
const takeoverCpu = takeoverUsed.user + takeoverUsed.system
stream.close()

// permessage-deflate without context takeover: each message compressed on its own.
let plainDeflateBytes = 0
const plainDeflateCpu = cpuMicros(() => {
  for (const message of messages) plainDeflateBytes += deflateRawSync(message).length
})

const perUpdate = (bytes: number): string => (bytes / n).toFixed(0)
const share = (bytes: number): string => `${((100 * bytes) / fullBytes).toFixed(0)} %`
// CPU per delivered update with WATCHERS watchers per channel: shared renderings are paid
// once per channel event; per-connection compression once per watcher.
const delivered = (micros: number, perWatcher: boolean): string => ((perWatcher ? micros / n : micros / n / WATCHERS) * 1000).toFixed(1)
const deltaDelivered = ((deltaCpu / n / WATCHERS + memoryCpu / n) * 1000).toFixed(1)

printTable(`Bytes and encoding CPU per bucket update (${n} updates from ${ITEMS} items, ${WATCHERS} watchers per channel; node ${process.version})`, [
  { encoding: 'full JSON (today)', 'bytes/update': perUpdate(fullBytes), 'of full': share(fullBytes), 'encode ns/update': delivered(fullCpu, false), note: 'rendered once per channel' },
  { encoding: 'delta (bucket_delta)', 'bytes/update': perUpdate(deltaBytes), 'of full': share(deltaBytes), 'encode ns/update': deltaDelivered, note: 'rendered once per channel + per-watcher memory' },
  { encoding: 'deflate, context takeover', 'bytes/update': perUpdate(takeoverBytes), 'of full': share(takeoverBytes), 'encode ns/update': delivered(takeoverCpu, true), note: 'compressed per connection' },
  { encoding: 'deflate, no takeover', 'bytes/update': perUpdate(plainDeflateBytes), 'of full': share(plainDeflateBytes), 'encode ns/update': delivered(plainDeflateCpu, false), note: 'compressed once per channel' }
])
console.log('Socket writes are one per delivered update in every encoding; their cost grows with the bytes written.')
