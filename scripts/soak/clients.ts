import { EventSource } from 'eventsource'
import WebSocket from 'ws'
import type { ManagedProcess } from '../../test/helpers/processes.js'

const TICKERS_PER_CLIENT = 5
const WS_RESOLUTIONS = ['1m', '5m']
const CHURN_MIN_MS = 15_000
const CHURN_SPREAD_MS = 30_000
/** Share of churns that drop the whole connection and open a new one (possibly on another gateway). */
const RECONNECT_SHARE = 0.1

export interface ClientStats {
  connects: number
  churns: number
  /** Messages received (a WebSocket batch counts once). */
  messages: number
  /** `error` events the gateways sent (a refused subscribe, a flood warning). */
  errors: number
  /** Connections that closed without the soak closing them. */
  unexpectedCloses: number
}

interface Client {
  kind: 'ws' | 'sse'
  tickers: string[]
  nextChurn: number
  ws?: WebSocket
  sse?: EventSource
}

/**
 * Dashboard-like stream clients that keep changing what they watch: WebSocket clients
 * unsubscribe two of their five tickers and subscribe two others, SSE clients (whose
 * selection is fixed in the URL) reconnect with a new one, and one churn in ten drops the
 * connection and opens a new one. They count what they receive and keep nothing else, so
 * the soak process stays small however long it runs.
 */
export class ChurningClients {
  readonly stats: ClientStats = { connects: 0, churns: 0, messages: 0, errors: 0, unexpectedCloses: 0 }
  readonly #gateways: readonly ManagedProcess[]
  readonly #tickers: readonly string[]
  readonly #clients: Client[] = []
  #timer: NodeJS.Timeout | undefined
  #next = 0

  constructor (gateways: readonly ManagedProcess[], tickers: readonly string[]) {
    this.#gateways = gateways
    this.#tickers = tickers
  }

  /** Opens `count` clients, a quarter of them SSE, spread over the gateways. */
  start (count: number): void {
    for (let i = 0; i < count; i++) {
      const client: Client = { kind: i % 4 === 3 ? 'sse' : 'ws', tickers: this.#pick(TICKERS_PER_CLIENT), nextChurn: Date.now() + CHURN_MIN_MS + Math.random() * CHURN_SPREAD_MS }
      this.#clients.push(client)
      this.#open(client)
    }
    this.#timer = setInterval(() => this.#churnDue(), 1000)
  }

  stop (): void {
    clearInterval(this.#timer)
    for (const client of this.#clients) this.#close(client)
  }

  /** Connections open now. */
  get open (): number {
    return this.#clients.filter((c) => c.ws?.readyState === WebSocket.OPEN || c.sse?.readyState === EventSource.OPEN).length
  }

  /** `n` distinct tickers, none of `besides`. */
  #pick (n: number, besides: readonly string[] = []): string[] {
    const picked = new Set<string>()
    while (picked.size < n) {
      const ticker = this.#tickers[Math.floor(Math.random() * this.#tickers.length)] as string
      if (!besides.includes(ticker)) picked.add(ticker)
    }
    return [...picked]
  }

  #gateway (): ManagedProcess {
    return this.#gateways[this.#next++ % this.#gateways.length] as ManagedProcess
  }

  #open (client: Client): void {
    this.stats.connects++
    const base = this.#gateway().url
    if (client.kind === 'ws') {
      const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/api/v2/ws?tickers=${client.tickers.join(',')}&resolutions=${WS_RESOLUTIONS.join(',')}`)
      client.ws = ws
      ws.on('message', (data) => {
        this.stats.messages++
        if (data.toString().includes('"type":"error"')) this.stats.errors++
      })
      ws.on('close', () => { if (client.ws === ws) this.stats.unexpectedCloses++ })
      ws.on('error', () => {})
      return
    }
    const sse = new EventSource(`${base}/api/v2/stream?tickers=${client.tickers.join(',')}&resolutions=1m`)
    client.sse = sse
    for (const type of ['partial_bucket', 'bucket_update', 'heartbeat']) sse.addEventListener(type, () => { this.stats.messages++ })
  }

  #close (client: Client): void {
    const { ws, sse } = client
    client.ws = undefined
    client.sse = undefined
    ws?.terminate()
    sse?.close()
  }

  #churnDue (): void {
    const now = Date.now()
    for (const client of this.#clients) {
      if (client.nextChurn > now) continue
      client.nextChurn = now + CHURN_MIN_MS + Math.random() * CHURN_SPREAD_MS
      this.stats.churns++
      const added = this.#pick(2, client.tickers)
      const dropped = client.tickers.splice(0, 2)
      client.tickers.push(...added)
      const ws = client.ws
      if (client.kind === 'ws' && ws?.readyState === WebSocket.OPEN && Math.random() >= RECONNECT_SHARE) {
        ws.send(JSON.stringify({ op: 'unsubscribe', tickers: dropped, resolutions: WS_RESOLUTIONS }))
        ws.send(JSON.stringify({ op: 'subscribe', tickers: added, resolutions: WS_RESOLUTIONS }))
        continue
      }
      this.#close(client)
      this.#open(client)
    }
  }
}
