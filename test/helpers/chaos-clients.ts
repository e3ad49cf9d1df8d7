import { EventSource } from 'eventsource'
import WebSocket from 'ws'
import type { ManagedProcess } from './processes.js'
import { ClientState, type ReceivedBucket, type ReceivedEvent, until } from './stream-clients.js'

export type Random = () => number

/** A small seeded PRNG (mulberry32): the same seed gives the same chaos schedule. */
export function mulberry32 (seed: number): Random {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * A dashboard-like stream client that survives faults: on any close or error it reconnects
 * to a live gateway (possibly another one) and resumes from its positions (`positions` on
 * WebSocket, the stream's token as `Last-Event-ID` on SSE), keeping every bucket it already
 * holds (highest rev wins); a series the gateway could not resume is read afresh with a
 * snapshot (on SSE its whole window follows by itself).
 */
export class ChaosClient {
  readonly state = new ClientState()
  reconnects = 0
  #stopped = false
  #ws: WebSocket | undefined
  #sse: EventSource | undefined
  #connected = false

  constructor (
    readonly name: string,
    readonly kind: 'ws' | 'sse',
    readonly tickers: readonly string[],
    readonly resolutions: readonly string[],
    readonly firstGateway: () => ManagedProcess,
    readonly liveGateway: () => ManagedProcess
  ) {}

  async start (): Promise<void> {
    this.#connect(this.firstGateway())
    await until(() => this.#connected, 15_000, `${this.name} to connect`)
  }

  watches (ticker: string, resolution: string): boolean {
    return this.tickers.includes(ticker) && this.resolutions.includes(resolution)
  }

  /** The bucket held under an expected-bucket key `TICKER#res@startMs`. */
  bucket (key: string): ReceivedBucket | undefined {
    const match = /^(.+)@(\d+)$/.exec(key)
    if (match === null) return undefined
    return this.state.buckets.get(`${match[1] as string}@${new Date(Number(match[2])).toISOString().replace('.000Z', 'Z')}`)
  }

  stop (): void {
    this.#stopped = true
    this.#ws?.terminate()
    this.#sse?.close()
  }

  #reconnect (): void {
    if (this.#stopped) return
    this.#connected = false
    this.reconnects++
    setTimeout(() => { if (!this.#stopped) this.#connect(this.liveGateway()) }, 200 + Math.floor(Math.random() * 300))
  }

  #connect (gateway: ManagedProcess): void {
    if (this.kind === 'ws') this.#connectWs(gateway)
    else this.#connectSse(gateway)
  }

  #connectWs (gateway: ManagedProcess): void {
    const socket = new WebSocket(`${gateway.url.replace(/^http/, 'ws')}/api/v2/ws`)
    this.#ws = socket
    let closed = false
    const lost = (): void => {
      if (closed) return
      closed = true
      this.#reconnect()
    }
    socket.on('open', () => {
      const positions = { ...this.state.positions }
      const resuming = Object.keys(positions).length > 0
      socket.send(JSON.stringify({ op: 'subscribe', tickers: this.tickers, resolutions: this.resolutions, ...(resuming ? { positions } : {}) }))
    })
    socket.on('message', (data) => {
      const parsed = JSON.parse(data.toString()) as ReceivedEvent | ReceivedEvent[]
      for (const event of Array.isArray(parsed) ? parsed : [parsed]) {
        if (event.type === 'subscribed') {
          this.#connected = true
          // Series without a position, or that the gateway could not continue, are read afresh.
          const missing = this.tickers.flatMap((ticker) => this.resolutions.map((r) => `${ticker}#${r}`))
            .filter((key) => this.state.positions[key] === undefined || (event.not_recovered as string[] | undefined)?.includes(key) === true)
          if (event.replayed !== undefined) {
            for (const key of missing) {
              const [ticker, resolution] = key.split('#')
              socket.send(JSON.stringify({ op: 'snapshot', id: `c${this.reconnects}:${key}`, ticker, resolution }))
            }
          }
        }
        this.state.apply(event)
      }
    })
    socket.on('close', lost)
    socket.on('error', () => { socket.terminate(); lost() })
  }

  #connectSse (gateway: ManagedProcess): void {
    // The stream's resume token: the id of the last event of the previous stream (same URL).
    const since = this.state.lastId
    const query = `tickers=${this.tickers.join(',')}&resolutions=${this.resolutions.join(',')}`
    const source = new EventSource(`${gateway.url}/api/v2/stream?${query}`, {
      fetch: async (input, init) => await fetch(input, {
        ...init,
        headers: { ...(init?.headers as Record<string, string>), ...(since === undefined ? {} : { 'last-event-id': since }) }
      })
    })
    this.#sse = source
    source.addEventListener('open', () => { this.#connected = true })
    for (const type of ['partial_bucket', 'bucket_update']) {
      source.addEventListener(type, (message) => {
        const data = JSON.parse(message.data) as Record<string, unknown>
        this.state.apply({ type, ...(message.lastEventId === '' ? {} : { id: message.lastEventId }), ...data })
      })
    }
    // Reconnect ourselves (to any live gateway, with our own last id) rather than let
    // EventSource retry the gateway that went away.
    source.addEventListener('error', () => {
      source.close()
      this.#reconnect()
    })
  }
}
