/*
 * The client's public surface and its connection state machine: which transport to try,
 * when to fall back and when to retry, the watchdog, and what each gateway event means for
 * the watched series. Around it, each on its own: the typed options and events
 * (client-options.ts), the series on a WebSocket (websocket-selection.ts) and on an event
 * stream (event-stream-selection.ts), the message budget (outbox.ts), delta decoding
 * (delta-decoder.ts), tokens (token-supply.ts), the HTTP API (http-api.ts) and the
 * browser's network signals (network-watch.ts).
 */
import { CloseCode, MAX_SUBSCRIPTIONS } from '../../../shared/stream-limits.js'
import { isResolution } from '../../../shared/timeseries/resolutions.js'
import { Backoff } from './backoff.js'
import type { ClientEvents, ClientOptions, ConnectionState } from './client-options.js'
import { DeltaDecoder } from './delta-decoder.js'
import { Emitter } from './emitter.js'
import { PulseClientError } from './errors.js'
import { EventStreamSelection } from './event-stream-selection.js'
import { HttpApi, isoTime, type TimeInput } from './http-api.js'
import { isOffline, watchNetwork } from './network-watch.js'
import { Outbox } from './outbox.js'
import { ResumePositions } from './resume.js'
import { Series, type SubscribeOptions, Subscription } from './series.js'
import { TokenRefresher } from './token-refresh.js'
import { TokenSupply } from './token-supply.js'
import { openEventStream, openWebSocket, type Transport, type TransportEnd, type WebSocketConstructor } from './transport.js'
import type { Bucket, ErrorCode, HistoryResponse, Resolution, ServerEvent, TickerSummary } from './types.js'
import { WebSocketSelection } from './websocket-selection.js'

export type { ClientEvents, ClientOptions, ConnectionState } from './client-options.js'
export type { TimeInput } from './http-api.js'
export type { TokenSource } from './token-supply.js'

/** Error codes that refuse a selection for good: its subscriptions fail rather than retry. */
const REFUSALS: readonly string[] = ['PULSE_ERR_UNKNOWN_TICKER', 'PULSE_ERR_BAD_RESOLUTION', 'PULSE_ERR_TOO_MANY_SUBSCRIPTIONS', 'PULSE_ERR_NOT_ENTITLED']

/** Opens a client to a Pulse gateway; it connects at once and reconnects until closed. */
export function connect (options: ClientOptions): PulseClient {
  return new PulseClient(options)
}

/**
 * One connection to Pulse, whatever carries it: WebSocket first, SSE when WebSocket fails
 * or is blocked, full-jitter backoff between attempts, a heartbeat watchdog, per-series
 * resume on any gateway, and one merge rule so no subscriber is ever handed a bucket state
 * older than one it already had. Subscriptions outlive connections.
 */
export class PulseClient extends Emitter<ClientEvents> {
  state: ConnectionState = 'connecting'
  readonly #options: ClientOptions
  readonly #base: URL
  readonly #fetch: typeof fetch
  readonly #tokens: TokenSupply
  readonly #http: HttpApi
  readonly #series = new Map<string, Series>()
  readonly #resume = new ResumePositions()
  readonly #backoff: Backoff
  #transport: Transport | undefined
  #kind: 'ws' | 'sse' = 'ws'
  #open = false
  #everLive = false
  #wsBlocked = false
  /** The token of the last WebSocket attempt, until one opens. */
  #wsFailedWith: { token: string | undefined } | undefined
  #attempt = 0
  readonly #refresher = new TokenRefresher(async () => await this.#tokens.fresh(), (token) => this.#outbox.send({ op: 'refresh', token }))
  #timers: Record<'retry' | 'watchdog' | 'resubscribe', ReturnType<typeof setTimeout> | undefined> = { retry: undefined, watchdog: undefined, resubscribe: undefined }
  /** What the current WebSocket asked the gateway to hold, and the replies it awaits. */
  readonly #asked = new WebSocketSelection()
  /** What the current event stream carries. */
  readonly #streamed = new EventStreamSelection()
  /** Sends within the gateway's message budget (a share of it), queueing the rest. */
  readonly #outbox = new Outbox((text) => this.#transport?.send(text))
  #syncQueued = false
  #lastData = 0
  /** On a WebSocket, full bucket states out of the gateway's deltas. */
  readonly #deltas = new DeltaDecoder()
  readonly #unwatchNetwork: () => void

  constructor (options: ClientOptions) {
    super()
    this.#options = options
    const base = new URL(String(options.url))
    base.protocol = base.protocol.replace(/^ws/, 'http')
    if (!base.pathname.endsWith('/')) base.pathname += '/'
    this.#base = base
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
    this.#tokens = new TokenSupply(options.token)
    this.#http = new HttpApi(base, this.#fetch, this.#tokens)
    this.#backoff = new Backoff(options.backoff)
    this.#unwatchNetwork = this.#watchNetwork()
    queueMicrotask(() => { if (this.state !== 'closed') this.#connect('ws') })
  }

  /** Series (`ticker × resolution`) this client watches, at most the gateway's 200. */
  get watching (): number {
    return this.#series.size
  }

  /**
   * Watches `ticker` at `resolutions`: `onBucket` gets every new state of every bucket of
   * those series, the snapshot first, across reconnections and failover. Throws
   * `PULSE_ERR_TOO_MANY_SUBSCRIPTIONS` past the gateway's limit and
   * `PULSE_ERR_BAD_RESOLUTION` for a resolution Pulse does not have; a ticker the gateway
   * does not know fails the subscription (`error` event, `ready` rejects).
   */
  subscribe (ticker: string, resolutions: Resolution | readonly Resolution[], onBucket: (bucket: Bucket) => void, options: SubscribeOptions = {}): Subscription {
    const list = [...new Set(typeof resolutions === 'string' ? [resolutions] : resolutions)]
    const bad = list.find((r) => !isResolution(r))
    if (bad !== undefined || list.length === 0) throw new PulseClientError('PULSE_ERR_BAD_RESOLUTION', `resolution must be one of 1m 5m 10m 1h 3h 6h 12h 24h, not ${JSON.stringify(bad)}`)
    const adds = list.filter((r) => !this.#series.has(`${ticker}#${r}`)).length
    if (this.#series.size + adds > MAX_SUBSCRIPTIONS) {
      throw new PulseClientError('PULSE_ERR_TOO_MANY_SUBSCRIPTIONS', `A client may hold at most ${MAX_SUBSCRIPTIONS} subscriptions; this would make ${this.#series.size + adds}`)
    }
    if (this.state === 'closed') throw new PulseClientError('PULSE_ERR_SHUTTING_DOWN', 'The client is closed')
    const sub = new Subscription(ticker, list, onBucket, options, (s) => this.#release(s))
    for (const resolution of list) {
      const key = `${ticker}#${resolution}`
      let series = this.#series.get(key)
      if (series === undefined) this.#series.set(key, series = new Series(key, ticker, resolution))
      if (series.synced && sub.window > series.syncedWindow) {
        // A wider history than the series was read with: read it again before handing on.
        series.synced = false
        series.needSnapshot = true
        series.await()
        if (series.acked) this.#snapshot(series)
      }
      sub.attach(series)
    }
    this.#scheduleSync()
    return sub
  }

  /**
   * `GET /api/v2/timeseries/{ticker}`: complete buckets in `[start, end)` and the partial
   * one. A range of more than one page (1500 buckets) is read page by page, following
   * `next`, and returned whole: `buckets` holds every page's, `partial_bucket` is the last
   * page's, `cache_hit` is true only if every page was a hit, `archive_unavailable` is true
   * if any page lacked the archive, `query_time_ms` is the sum.
   */
  async history (ticker: string, resolution: Resolution, range: { start?: TimeInput, end?: TimeInput } = {}): Promise<HistoryResponse> {
    return await this.#http.history(ticker, resolution, range)
  }

  /** `GET /api/v2/tickers`: the configured tickers with their current 1m and 24h buckets. */
  async tickers (): Promise<TickerSummary[]> {
    return await this.#http.tickers()
  }

  /** Closes the connection and every subscription; the client cannot be used again. */
  close (): void {
    this.#stop()
    for (const series of [...this.#series.values()]) for (const sub of [...series.subs]) sub.close()
    this.#unwatchNetwork()
    this.#setState('closed')
  }

  // ---- Connections

  async #connect (want: 'ws' | 'sse'): Promise<void> {
    this.#stop()
    const attempt = ++this.#attempt
    const transports = this.#options.transports ?? ['ws', 'sse']
    let kind: 'ws' | 'sse' = (want === 'ws' && (this.#wsBlocked || !transports.includes('ws'))) || !transports.includes(want) ? 'sse' : want
    this.#kind = kind
    let token: string | undefined
    try {
      token = await this.#tokens.fresh()
    } catch {
      if (attempt === this.#attempt) this.#ended(kind, { opened: false })
      return
    }
    if (attempt !== this.#attempt) return
    // A WebSocket that never opened without a token (a browser cannot see the 401) may open with one.
    if (kind === 'sse' && this.#wsFailedWith !== undefined && this.#wsFailedWith.token === undefined && token !== undefined && transports.includes('ws') && !this.#wsBlocked) {
      kind = 'ws'
      this.#kind = kind
    }
    if (kind === 'ws') this.#wsFailedWith = { token }
    const current = (): boolean => attempt === this.#attempt
    const on = {
      open: () => { if (current()) this.#opened() },
      alive: () => { if (current()) this.#arm() },
      message: (message: ServerEvent) => { if (current()) this.#message(message) },
      end: (end: TransportEnd) => {
        if (!current()) return
        this.#transport = undefined
        this.#ended(kind, end)
      }
    }
    if (kind === 'ws') {
      const url = new URL('api/v2/ws', this.#base)
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
      if (token !== undefined) url.searchParams.set('token', token)
      // States of buckets this connection already sent come as the fields that changed.
      url.searchParams.set('encoding', 'delta')
      this.#deltas.clear()
      this.#transport = openWebSocket(this.#options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket, String(url), on)
      return
    }
    if (!this.#streamed.choose([...this.#series.keys()])) {
      // Nothing to watch: an event stream would carry every ticker. It opens with the first subscription.
      this.#setState('fallback')
      return
    }
    const headers = this.#resume.streamHeaders([...this.#streamed.carried].filter((key) => this.#series.has(key)))
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    this.#transport = openEventStream(this.#fetch, String(this.#streamed.url(this.#base)), headers, on)
  }

  #opened (): void {
    this.#open = true
    this.#arm()
    if (this.#kind === 'sse') {
      this.#live()
      const left = this.#streamed.leftOff(this.#series.keys())
      if (left.length > 0) this.#fail('PULSE_ERR_TOO_MANY_SUBSCRIPTIONS', `An event stream carries at most ${MAX_SUBSCRIPTIONS} series as tickers × resolutions; ${left.join(' ')} left off`)
      for (const key of this.#streamed.carried) {
        const series = this.#series.get(key)
        if (series === undefined) continue
        series.acked = true
        this.#settle(series, this.#resume.has(key))
      }
      return
    }
    this.#wsFailedWith = undefined
    this.#outbox.restart()
    this.#asked.restart()
    if (this.#series.size === 0) this.#live()
    if (this.#tokens.renewable) this.#refresher.arm(this.#tokens.last)
    this.#sync()
  }

  #live (): void {
    this.#everLive = true
    this.#backoff.reset()
    this.#setState(this.#kind === 'ws' ? 'live' : 'fallback')
  }

  #ended (kind: 'ws' | 'sse', end: TransportEnd): void {
    this.#stop()
    if (end.blocked === true && kind === 'ws') this.#wsBlocked = true
    if (end.code === CloseCode.flood) this.#fail('PULSE_ERR_FLOOD', 'The gateway closed the connection: too many messages')
    if (end.code === CloseCode.tooLarge) this.#fail('PULSE_ERR_MESSAGE_TOO_LARGE', 'The gateway closed the connection: a message over 16 KB')
    if (end.status !== undefined) {
      const code = (end.errorCode ?? (end.status === 401 ? 'PULSE_ERR_UNAUTHORIZED' : end.status === 503 ? 'PULSE_ERR_TOO_MANY_CONNECTIONS' : 'PULSE_ERR_UNAVAILABLE')) as ErrorCode
      this.#fail(code, `The event stream was refused: HTTP ${end.status}`, end.status)
    }
    if (isOffline()) return this.#setState('offline')
    const transports = this.#options.transports ?? ['ws', 'sse']
    // A WebSocket that never opened may be blocked by a proxy: try SSE before waiting.
    if (kind === 'ws' && !end.opened && transports.includes('sse')) {
      this.#connect('sse').catch(() => {})
      return
    }
    this.#setState(this.#everLive ? 'reconnecting' : 'connecting')
    const delay = Math.max(this.#backoff.next(), (end.retryAfter ?? 0) * 1000)
    this.#timers.retry = setTimeout(() => { this.#connect('ws').catch(() => {}) }, delay)
  }

  /** Drops the current connection and its timers; subscriptions stay. */
  #stop (): void {
    this.#attempt++
    this.#refresher.stop()
    for (const timer of Object.values(this.#timers)) clearTimeout(timer)
    this.#transport?.close()
    this.#transport = undefined
    this.#open = false
    this.#outbox.clear()
    for (const series of this.#series.values()) series.acked = false
  }

  #arm (): void {
    this.#lastData = Date.now()
    clearTimeout(this.#timers.watchdog)
    this.#timers.watchdog = setTimeout(() => {
      // Silence past the heartbeat interval: the connection is dead even if no close came.
      this.#ended(this.#kind, { opened: true })
    }, this.#options.watchdogMs ?? 35_000)
  }

  // ---- Messages

  #message (message: ServerEvent): void {
    if (this.state !== (this.#kind === 'ws' ? 'live' : 'fallback')) this.#live()
    switch (message.type) {
      case 'partial_bucket':
      case 'bucket_update': {
        if (this.#kind === 'ws') this.#deltas.full(message)
        this.#bucket(`${message.ticker}#${message.resolution}`, message.id, message.bucket)
        return
      }
      case 'bucket_delta': {
        const decoded = this.#deltas.decode(message)
        if (decoded === undefined) return
        const { key, bucket } = decoded
        if (bucket === undefined) {
          // Not the state the delta is against (a gateway never sends that): read the series afresh.
          const series = this.#series.get(key)
          if (series !== undefined) this.#gap(series)
          return
        }
        this.#bucket(key, message.id, bucket)
        return
      }
      case 'subscribed': {
        const reply = this.#asked.nextReply()
        if (reply === undefined || message.op !== 'subscribe') return
        for (const key of reply.keys) {
          const series = this.#series.get(key)
          if (series === undefined) continue
          series.acked = true
          const recovered = reply.resumed && this.#resume.recovered(message, key)
          if (reply.resumed && !recovered) this.#startOver(series)
          this.#settle(series, recovered)
        }
        return
      }
      case 'resumed': {
        // An event stream that could not continue these series: what is held is replaced.
        for (const key of message.not_recovered) {
          const series = this.#series.get(key)
          if (series === undefined) continue
          this.#startOver(series)
          this.#settle(series, false)
        }
        return
      }
      case 'snapshot': {
        const series = this.#series.get(this.#asked.snapshotAnswered(message.id))
        if (series !== undefined) this.#applySnapshot(series, message)
        return
      }
      case 'error': {
        const error = new PulseClientError(message.code as ErrorCode, message.message)
        if (message.series !== undefined) {
          // Series refused on their own (entitlement), or dropped by a refresh: no reply to a request.
          for (const key of message.series) {
            this.#asked.notHeld(key)
            for (const sub of [...this.#series.get(key)?.subs ?? []]) sub.fail(error)
          }
          return
        }
        if (message.code === 'PULSE_ERR_FLOOD') {
          // A dropped message leaves this connection's state unknown: start again, resuming.
          this.emit('error', error)
          this.#ended(this.#kind, { opened: true })
          return
        }
        const keys = message.id === undefined ? this.#asked.nextReply()?.keys ?? [] : [this.#asked.snapshotAnswered(message.id)]
        const subs = new Set(keys.flatMap((key) => [...this.#series.get(key)?.subs ?? []]))
        if (!REFUSALS.includes(message.code) || subs.size === 0) {
          // Not a verdict on the selection: read the series again on the next connection.
          for (const key of keys) { const series = this.#series.get(key); if (series !== undefined) series.needSnapshot = true }
          this.emit('error', error)
          return
        }
        // The gateway never held a refused series: nothing to unsubscribe.
        for (const key of keys) this.#asked.notHeld(key)
        for (const sub of subs) sub.fail(error)
      }
    }
  }

  /** A bucket state of `key` arrived, with its event id. */
  #bucket (key: string, id: string, bucket: Bucket): void {
    const series = this.#series.get(key)
    if (series === undefined) return
    if (series.synced) {
      if (this.#kind === 'ws') this.#resume.event(key, id)
      else this.#resume.streamEvent(key, id, this.#streamed.tickers)
    }
    series.offer(bucket)
  }

  /** A state of the series was missed: live states wait for a fresh snapshot, merged with what is held. */
  #gap (series: Series): void {
    if (!series.acked || series.window === 0) {
      series.needSnapshot = true
      return
    }
    series.synced = false
    series.await()
    this.#snapshot(series)
  }

  /**
   * The gateway could not continue the series from its position (its history was rolled
   * back, or the position is unknown to it): what is held is forgotten, so the fresh
   * snapshot replaces it even where its states are older.
   */
  #startOver (series: Series): void {
    series.held.clear()
    this.#resume.forget(series.key)
  }

  /** The gateway holds the series: live states flow when it was recovered, after a fresh snapshot when not. */
  #settle (series: Series, recovered: boolean): void {
    if (recovered && !series.needSnapshot) {
      if (!series.synced) series.flow()
    } else if (series.window > 0) {
      series.synced = false
      series.await()
      this.#snapshot(series)
    } else {
      series.flow()
    }
  }

  #snapshot (series: Series): void {
    series.needSnapshot = false
    const window = series.window
    const start = window === Infinity ? undefined : isoTime(Date.now() - window)
    if (this.#kind === 'ws') {
      const id = this.#asked.snapshotRequest(series.key)
      this.#outbox.send({ op: 'snapshot', id, ticker: series.ticker, resolution: series.resolution, ...(start === undefined ? {} : { start }) })
      return
    }
    const attempt = this.#attempt
    this.history(series.ticker, series.resolution, start === undefined ? {} : { start }).then((response) => {
      if (this.#series.get(series.key) === series) this.#applySnapshot(series, response)
    }, (err: unknown) => {
      // Read again on the next connection; meanwhile live states wait.
      series.needSnapshot = true
      if (attempt === this.#attempt) this.emit('error', err instanceof PulseClientError ? err : new PulseClientError('PULSE_ERR_UNAVAILABLE', String(err)))
    })
  }

  #applySnapshot (series: Series, response: HistoryResponse): void {
    const buckets = response.partial_bucket === null ? response.buckets : [...response.buckets, response.partial_bucket]
    this.#resume.snapshot(series.key, response.position)
    series.syncedWindow = series.window
    series.applySnapshot(buckets)
  }

  // ---- Subscriptions on the wire

  #release (sub: Subscription): void {
    for (const resolution of sub.resolutions) {
      const key = `${sub.ticker}#${resolution}`
      const series = this.#series.get(key)
      if (series === undefined || !series.subs.delete(sub) || series.subs.size > 0) continue
      this.#series.delete(key)
      this.#resume.forget(key)
    }
    this.#scheduleSync()
  }

  #scheduleSync (): void {
    if (this.#syncQueued) return
    this.#syncQueued = true
    queueMicrotask(() => {
      this.#syncQueued = false
      this.#sync()
    })
  }

  /** Brings what the gateway holds in line with what is watched: the difference only, in few messages. */
  #sync (): void {
    if (this.state === 'closed') return
    if (this.#kind === 'sse') {
      const idle = this.#transport === undefined && this.state === 'fallback'
      // Connecting, or waiting to retry: the next attempt takes the selection as it is then.
      if (!idle && !this.#open) return
      if (!idle && this.#streamed.covers(this.#series.keys())) return
      // An event stream fixes its selection in its URL: reopen it (resuming) once the selection settles.
      clearTimeout(this.#timers.resubscribe)
      this.#timers.resubscribe = setTimeout(() => { this.#connect('sse').catch(() => {}) }, idle ? 0 : this.#options.sseResubscribeMs ?? 1000)
      return
    }
    if (!this.#open) return
    this.#asked.sync(this.#series, this.#resume, (message) => this.#outbox.send(message))
  }

  // ---- State

  #fail (code: ErrorCode, message: string, status?: number): void {
    this.emit('error', new PulseClientError(code, message, status))
  }

  #setState (state: ConnectionState): void {
    const previous = this.state
    if (previous === state || previous === 'closed') return
    this.state = state
    this.emit('state', state, previous)
  }

  /** In a browser: offline and online, and a tab back in view, act at once rather than on the next timer. */
  #watchNetwork (): () => void {
    return watchNetwork({
      online: () => {
        this.#backoff.reset()
        this.#connect('ws').catch(() => {})
      },
      offline: () => {
        this.#stop()
        this.#setState('offline')
      },
      visible: () => {
        const quiet = Date.now() - this.#lastData > (this.#options.watchdogMs ?? 35_000)
        if (this.#transport === undefined || quiet) {
          this.#backoff.reset()
          this.#connect('ws').catch(() => {})
        }
      }
    })
  }
}
