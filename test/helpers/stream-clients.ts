import { readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { EventSource } from 'eventsource'
import WebSocket from 'ws'

/** Gateway engines (`GATEWAY_ENGINE`) the streaming tests run against: the same tests for each. */
export const ENGINES = ['fastify', 'uws'] as const

/**
 * Why `engine` cannot run under this Node, as a skip reason, or `false` when it can. The
 * uWebSockets.js build ships native binaries for some Node ABIs only, and the gateway
 * refuses `GATEWAY_ENGINE=uws` without one; the binary's file name is read here instead
 * of importing the package, whose import prints a fallback warning on such runtimes.
 */
export function engineUnavailable (engine: typeof ENGINES[number]): string | false {
  if (engine !== 'uws') return false
  const binaries = join(dirname(createRequire(import.meta.url).resolve('uWebSockets.js')), '..', 'binaries')
  const wanted = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`
  if (readdirSync(binaries).includes(wanted)) return false
  return `uWebSockets.js has no native binary for Node ${process.version} on ${process.platform}-${process.arch} (no ${wanted}); the gateway refuses GATEWAY_ENGINE=uws there`
}

/** A bucket as clients receive it; `any` fields are not needed by the tests. */
export interface ReceivedBucket {
  ticker: string
  resolution: string
  timestamp: string
  rev: number
  count: number
  sum: number
  is_partial: boolean
  [field: string]: unknown
}

/** A received event: WebSocket objects as sent, SSE events as `{type, id, ...data}`. */
export interface ReceivedEvent {
  type: string
  id?: string
  ticker?: string
  resolution?: string
  bucket?: ReceivedBucket
  accepted_at?: number
  [field: string]: unknown
}

/** Waiters of {@link until}, woken when any client receives something. */
let waiters: Array<() => void> = []
let wakeScheduled = false

/** Wakes every waiting {@link until} once the events received in this turn are applied. */
function received (): void {
  if (wakeScheduled) return
  wakeScheduled = true
  setImmediate(() => {
    wakeScheduled = false
    const woken = waiters
    waiters = []
    for (const wake of woken) wake()
  })
}

/** What a client knows: the highest-rev state of every bucket it heard of. */
export class ClientState {
  readonly buckets = new Map<string, ReceivedBucket>()
  readonly events: ReceivedEvent[] = []
  /** The id of the last bucket event (on an event stream, the stream's resume token). */
  lastId: string | undefined
  /** Per `ticker#resolution`, the id of its last bucket event (on a WebSocket, the series position). */
  readonly positions: Record<string, string> = {}

  apply (event: ReceivedEvent): void {
    this.events.push(event)
    received()
    if (event.type === 'snapshot') {
      const snapshot = event as unknown as { ticker: string, resolution: string, buckets: ReceivedBucket[], partial_bucket: ReceivedBucket | null, position: string }
      for (const bucket of [...snapshot.buckets, ...snapshot.partial_bucket === null ? [] : [snapshot.partial_bucket]]) this.#keep(bucket)
      this.positions[`${snapshot.ticker}#${snapshot.resolution}`] = snapshot.position
      return
    }
    if (event.bucket === undefined) return
    if (event.id !== undefined) {
      this.lastId = event.id
      this.positions[`${event.bucket.ticker}#${event.bucket.resolution}`] = event.id
    }
    this.#keep(event.bucket)
  }

  #keep (bucket: ReceivedBucket): void {
    const key = `${bucket.ticker}#${bucket.resolution}@${bucket.timestamp}`
    const current = this.buckets.get(key)
    if (current === undefined || bucket.rev >= current.rev) this.buckets.set(key, bucket)
  }

  /** `key → rev:count:sum` of every bucket, for comparing two clients. */
  digest (): Record<string, string> {
    const out: Record<string, string> = {}
    for (const [key, b] of [...this.buckets].sort(([a], [c]) => a.localeCompare(c))) out[key] = `${b.rev}:${b.count}:${b.sum.toFixed(9)}`
    return out
  }

  of (type: string): ReceivedEvent[] {
    return this.events.filter((e) => e.type === type)
  }
}

/**
 * Waits until `check` holds, failing after `ms`: checked again as soon as any client has
 * received something, and every 20 ms for conditions that depend on nothing received.
 */
export async function until (check: () => boolean, ms = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer)
        waiters = waiters.filter((waiter) => waiter !== wake)
        resolve()
      }
      const timer = setTimeout(wake, 20)
      waiters.push(wake)
    })
  }
}

/** A real `ws` client that records what it receives. */
export class WsTestClient {
  readonly state = new ClientState()
  readonly socket: WebSocket
  closeCode: number | undefined
  readonly opened: Promise<void>
  readonly closedPromise: Promise<number>

  constructor (url: string, options: WebSocket.ClientOptions = {}) {
    this.socket = new WebSocket(url, options)
    this.socket.on('message', (data) => {
      const parsed = JSON.parse(data.toString()) as ReceivedEvent | ReceivedEvent[]
      for (const event of Array.isArray(parsed) ? parsed : [parsed]) this.state.apply(event)
    })
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve())
      this.socket.once('error', reject)
    })
    this.closedPromise = new Promise((resolve) => this.socket.once('close', (code) => {
      this.closeCode = code
      resolve(code)
    }))
    this.socket.on('error', () => {})
  }

  static async open (base: string, query = '', options: WebSocket.ClientOptions = {}): Promise<WsTestClient> {
    const client = new WsTestClient(`${base.replace(/^http/, 'ws')}/api/v2/ws${query}`, options)
    await client.opened
    return client
  }

  send (message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message))
  }

  /** Sends a subscribe and waits for its `subscribed` reply. */
  async subscribe (tickers: string[], resolutions: string[], positions?: Record<string, string>): Promise<ReceivedEvent> {
    const before = this.state.of('subscribed').length
    const errors = this.state.of('error').length
    this.send({ op: 'subscribe', tickers, resolutions, ...(positions === undefined ? {} : { positions }) })
    await until(() => this.state.of('subscribed').length > before || this.state.of('error').length > errors, 10_000, 'subscribed')
    return this.state.of('subscribed')[before] as ReceivedEvent
  }

  close (): void {
    this.socket.terminate()
  }
}

const SSE_TYPES = ['partial_bucket', 'bucket_update', 'heartbeat', 'resumed']

/** A real `eventsource` client that records what it receives. */
export class SseTestClient {
  readonly state = new ClientState()
  readonly source: EventSource
  opens = 0

  constructor (url: string, init: ConstructorParameters<typeof EventSource>[1] = {}) {
    this.source = new EventSource(url, init)
    this.source.addEventListener('open', () => { this.opens++ })
    for (const type of SSE_TYPES) {
      this.source.addEventListener(type, (message) => {
        const data = JSON.parse(message.data) as Record<string, unknown>
        this.state.apply({ type, ...(message.lastEventId === '' ? {} : { id: message.lastEventId }), ...data })
      })
    }
  }

  close (): void {
    this.source.close()
  }
}

/** An item for `p.post`, in the current minute unless `ts` says otherwise. */
export function item (id: string, ticker = 'AAPL', ts = Date.now(), score = 0.1): Record<string, unknown> {
  return { id, ticker, timestamp: new Date(ts).toISOString(), score, source: 'test' }
}
