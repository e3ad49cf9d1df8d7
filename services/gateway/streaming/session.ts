import { ERRORS, type ErrorCode, PulseError } from '../../../shared/errors.js'
import { type RefreshSession, refreshSession } from '../access/ws-refresh.js'
import type { StreamAccess } from '../access/stream-access.js'
import type { SeriesKey } from '../../../shared/timeseries/keys.js'
import { isResolution, toIsoSecond } from '../../../shared/timeseries/resolutions.js'
import type { GatewayContext } from '../context.js'
import { queryHistory } from '../history.js'
import type { TickerLookup } from '../readable-tickers.js'
import type { ChannelHub } from './channel-hub.js'
import type { ConnectionActor } from './connection-actor.js'
import { FloodGuard } from './flood-guard.js'
import {
  listParam, MAX_SUBSCRIPTIONS, parseClientMessage, parsePosition, renderEvent, selectSeries,
  type SelectionError, type SnapshotMessage, type SubscribeMessage, type UnsubscribeMessage
} from './protocol.js'
import { resume, ResumeToken } from './resume.js'

/*
 * What a stream does once admitted, the same on both engines: the WebSocket protocol of a
 * connection, and the start of an event stream. The engines only parse their requests and
 * hand over the query.
 */

/** A stream's query string, however the engine reads it. */
export type StreamQuery = (name: string) => string | undefined

/**
 * The WebSocket protocol of one connection, independent of the engine: parses client
 * messages, applies the flood guard and the subscription limit, and answers through the
 * connection actor.
 */
export class WsSession {
  readonly #actor: ConnectionActor
  readonly #hub: ChannelHub
  readonly #pulse: GatewayContext
  readonly #known: TickerLookup
  readonly #flood: FloodGuard
  /** The reader's entitlement and token; unset in apps built without access (some tests). */
  readonly #access: StreamAccess | undefined
  /** Serializes subscribe/unsubscribe so their replies and replays keep request order. */
  #queue: Promise<void> = Promise.resolve()

  constructor (actor: ConnectionActor, hub: ChannelHub, pulse: GatewayContext, known: TickerLookup, access?: StreamAccess) {
    this.#access = access
    this.#actor = actor
    this.#hub = hub
    this.#pulse = pulse
    this.#known = known
    this.#flood = new FloodGuard(pulse.now())
  }

  /**
   * The subscription asked for on the URL (`?tickers=&resolutions=`), if any; failures
   * reach the client as `error` events, and `onError` hears of unexpected ones.
   */
  subscribeFromQuery (query: StreamQuery, onError: (err: unknown) => void): void {
    const tickers = listParam(query('tickers'))
    if (tickers.length === 0) return
    const resolutions = query('resolutions')
    this.subscribe({
      op: 'subscribe',
      tickers,
      resolutions: resolutions === undefined ? ['1m'] : listParam(resolutions)
    }).catch(onError)
  }

  /** Handles one incoming message (text, or binary that should have been text). */
  handle (text: string): void {
    const verdict = this.#flood.check(this.#pulse.now())
    if (verdict === 'disconnect') {
      this.#actor.close('flood')
      return
    }
    if (verdict !== 'accept') {
      if (verdict === 'drop-and-warn') this.#error('PULSE_ERR_FLOOD')
      return
    }
    const parsed = parseClientMessage(text)
    if (!parsed.ok) {
      this.#error('PULSE_ERR_BAD_MESSAGE', `${ERRORS.PULSE_ERR_BAD_MESSAGE.message}: ${parsed.message}`)
      return
    }
    const message = parsed.message
    switch (message.op) {
      case 'ping':
        this.#actor.reply(renderEvent('pong', { timestamp: toIsoSecond(this.#pulse.now()) }))
        return
      case 'snapshot':
        this.#snapshot(message).catch((err: unknown) => this.#fail(err, message.id))
        return
      case 'subscribe':
        this.#enqueue(async () => await this.subscribe(message))
        return
      case 'unsubscribe':
        this.#enqueue(async () => this.#unsubscribe(message))
        return
      case 'refresh':
        this.#enqueue(async () => await refreshSession(this.#refreshTarget(), message.token))
    }
  }

  /** Subscribes to tickers × resolutions, resuming the series `positions` names. */
  async subscribe (message: SubscribeMessage): Promise<void> {
    const asked = selectSeries(message.tickers, message.resolutions, this.#known)
    if (!Array.isArray(asked)) {
      this.#error(asked.code, asked.message)
      return
    }
    const verdict = this.#access?.subscribe(asked, this.#actor)
    if (verdict?.refused !== undefined) {
      this.#error(verdict.refused.code, verdict.refused.message)
      return
    }
    // Series outside the entitlement get their own error; the rest of the subscription stands.
    if (verdict?.notEntitled !== undefined) this.#actor.reply(renderEvent('error', { ...verdict.notEntitled }))
    const selected = verdict?.allowed ?? asked
    const positions = new Map<SeriesKey, number>()
    for (const [key, text] of Object.entries(message.positions ?? {})) {
      const position = parsePosition(text)
      if (position === undefined) {
        this.#error('PULSE_ERR_BAD_MESSAGE', `positions.${key.slice(0, 24)} must be a position (the id of an event or a snapshot); got ${JSON.stringify(text.slice(0, 20))}`)
        return
      }
      positions.set(key as SeriesKey, position)
    }
    const added = selected.filter((key) => !this.#actor.subscriptions.has(key))
    if (this.#actor.subscriptions.size + added.length > MAX_SUBSCRIPTIONS) {
      this.#error('PULSE_ERR_TOO_MANY_SUBSCRIPTIONS', `${ERRORS.PULSE_ERR_TOO_MANY_SUBSCRIPTIONS.message}; this request would make ${this.#actor.subscriptions.size + added.length}`)
      return
    }
    await Promise.all(added.map(async (key) => await this.#hub.join(this.#actor, key)))
    const payload: Record<string, unknown> = {
      op: 'subscribe',
      tickers: message.tickers,
      resolutions: message.resolutions,
      subscriptions: this.#actor.subscriptions.size
    }
    if (message.positions === undefined) {
      this.#actor.reply(renderEvent('subscribed', payload))
      return
    }
    const resumed = await resume(this.#pulse.cache, selected, positions, this.#pulse.now(), false)
    payload.replayed = resumed.events.length
    payload.not_recovered = resumed.notRecovered
    this.#actor.reply(renderEvent('subscribed', payload))
    this.#actor.offer(resumed.events)
  }

  #unsubscribe (message: UnsubscribeMessage): void {
    const selected = selectSeries(message.tickers, message.resolutions, this.#known)
    if (!Array.isArray(selected)) {
      this.#error(selected.code, selected.message)
      return
    }
    this.#hub.leave(this.#actor, selected)
    this.#actor.reply(renderEvent('subscribed', {
      op: 'unsubscribe',
      tickers: message.tickers,
      resolutions: message.resolutions,
      subscriptions: this.#actor.subscriptions.size
    }))
  }

  async #snapshot (message: SnapshotMessage): Promise<void> {
    if (!this.#known.has(message.ticker)) throw new PulseError('PULSE_ERR_UNKNOWN_TICKER', `Unknown ticker ${JSON.stringify(message.ticker)}`)
    if (!isResolution(message.resolution)) throw new PulseError('PULSE_ERR_BAD_RESOLUTION')
    this.#access?.checkRead(message.ticker, message.resolution)
    const response = await queryHistory(this.#pulse.cache, {
      ticker: message.ticker,
      resolution: message.resolution,
      start: message.start,
      end: message.end
    }, this.#pulse.now)
    this.#actor.reply(renderEvent('snapshot', { id: message.id, ...response }))
  }

  #refreshTarget (): RefreshSession {
    return { access: this.#access, actor: this.#actor, hub: this.#hub }
  }

  #enqueue (task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task).catch((err: unknown) => this.#fail(err))
  }

  #fail (err: unknown, id?: string): void {
    if (err instanceof PulseError) this.#error(err.code, err.message, id)
    else this.#error('PULSE_ERR_INTERNAL', undefined, id)
  }

  #error (code: ErrorCode, message?: string, id?: string): void {
    const payload: Record<string, unknown> = { code, message: message ?? ERRORS[code].message }
    if (id !== undefined) payload.id = id
    this.#actor.reply(renderEvent('error', payload))
  }
}

/**
 * The series of an event stream (`?tickers=&resolutions=`; no tickers: every configured
 * one; no resolutions: `1m`), checked before a connection slot is taken.
 */
export function eventStreamSeries (query: StreamQuery, tickers: readonly string[], known: TickerLookup): SeriesKey[] | SelectionError {
  const asked = listParam(query('tickers'))
  const resolutions = query('resolutions')
  const series = selectSeries(asked.length === 0 ? tickers : asked, resolutions === undefined ? ['1m'] : listParam(resolutions), known)
  if (!Array.isArray(series)) return series
  if (series.length === 0) return { code: 'PULSE_ERR_BAD_RESOLUTION', message: ERRORS.PULSE_ERR_BAD_RESOLUTION.message }
  if (series.length > MAX_SUBSCRIPTIONS) return { code: 'PULSE_ERR_TOO_MANY_SUBSCRIPTIONS', message: ERRORS.PULSE_ERR_TOO_MANY_SUBSCRIPTIONS.message }
  return series
}

/** An event stream's resume token, and whether the client resumes (it sent one). */
export interface EventStreamResume {
  token: ResumeToken
  resuming: boolean
}

/**
 * The resume token of an event stream of `series`, read from `Last-Event-ID` (or
 * `?lastEventId=` where headers cannot be set); a fresh one when the client starts afresh.
 */
export function eventStreamResume (lastEventIdHeader: string | undefined, query: StreamQuery, series: readonly SeriesKey[]): EventStreamResume {
  const text = lastEventIdHeader ?? query('lastEventId')
  return { token: new ResumeToken(series, ResumeToken.read(text, series)), resuming: text !== undefined }
}

/**
 * Joins an event stream's channels, then, for a stream that resumes, says what it
 * recovered (a `resumed` event) and queues the replay: the states above each recovered
 * series' position, and the whole window of every other.
 */
export async function startEventStream (hub: ChannelHub, pulse: GatewayContext, actor: ConnectionActor, series: readonly SeriesKey[], from: EventStreamResume): Promise<void> {
  await Promise.all(series.map(async (key) => await hub.join(actor, key)))
  if (!from.resuming) return
  const resumed = await resume(pulse.cache, series, from.token.positions, pulse.now(), true)
  actor.reply(renderEvent('resumed', { replayed: resumed.events.length, not_recovered: resumed.notRecovered }))
  actor.offer(resumed.events)
}
