import { ERRORS, type ErrorCode, PulseError } from '../../../shared/errors.js'
import { isResolution, type SeriesKey, toIsoSecond } from '../../../shared/timeseries/index.js'
import type { GatewayContext } from '../context.js'
import { queryHistory } from '../history.js'
import type { ChannelHub } from './channel-hub.js'
import type { ConnectionActor } from './connection.js'
import { FloodGuard } from './connection.js'
import {
  listParam, MAX_SUBSCRIPTIONS, parseClientMessage, parseEventId, renderEvent, replaySince, selectSeries,
  type SelectionError, type SnapshotMessage, type SubscribeMessage, type UnsubscribeMessage
} from './protocol.js'

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
  readonly #known: ReadonlySet<string>
  readonly #flood: FloodGuard
  /** Serializes subscribe/unsubscribe so their replies and replays keep request order. */
  #queue: Promise<void> = Promise.resolve()

  constructor (actor: ConnectionActor, hub: ChannelHub, pulse: GatewayContext, known: ReadonlySet<string>) {
    this.#actor = actor
    this.#hub = hub
    this.#pulse = pulse
    this.#known = known
    this.#flood = new FloodGuard(pulse.now())
  }

  /**
   * The subscription asked for on the URL (`?tickers=&resolutions=&since=`), if any;
   * failures reach the client as `error` events, and `onError` hears of unexpected ones.
   */
  subscribeFromQuery (query: StreamQuery, onError: (err: unknown) => void): void {
    const tickers = listParam(query('tickers'))
    if (tickers.length === 0) return
    const resolutions = query('resolutions')
    const since = query('since')
    this.subscribe({
      op: 'subscribe',
      tickers,
      resolutions: resolutions === undefined ? ['1m'] : listParam(resolutions),
      ...(since === undefined ? {} : { since })
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
    }
  }

  /** Subscribes to tickers × resolutions, replaying from `since` when given. */
  async subscribe (message: SubscribeMessage): Promise<void> {
    const selected = selectSeries(message.tickers, message.resolutions, this.#known)
    if (!Array.isArray(selected)) {
      this.#error(selected.code, selected.message)
      return
    }
    const since = message.since === undefined ? undefined : parseEventId(message.since)
    if (message.since !== undefined && since === undefined) {
      this.#error('PULSE_ERR_BAD_MESSAGE', 'since must be an event id')
      return
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
    if (since === undefined) {
      this.#actor.reply(renderEvent('subscribed', payload))
      return
    }
    const replay = await replaySince(this.#pulse.cache, selected, since, this.#pulse.now())
    payload.replayed = replay.length
    this.#actor.reply(renderEvent('subscribed', payload))
    this.#actor.offer(replay)
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
    const response = await queryHistory(this.#pulse.cache, {
      ticker: message.ticker,
      resolution: message.resolution,
      start: message.start,
      end: message.end
    }, this.#pulse.now)
    this.#actor.reply(renderEvent('snapshot', { id: message.id, ...response }))
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
export function eventStreamSeries (query: StreamQuery, tickers: readonly string[], known: ReadonlySet<string>): SeriesKey[] | SelectionError {
  const asked = listParam(query('tickers'))
  const resolutions = query('resolutions')
  const series = selectSeries(asked.length === 0 ? tickers : asked, resolutions === undefined ? ['1m'] : listParam(resolutions), known)
  if (!Array.isArray(series)) return series
  if (series.length === 0) return { code: 'PULSE_ERR_BAD_RESOLUTION', message: ERRORS.PULSE_ERR_BAD_RESOLUTION.message }
  if (series.length > MAX_SUBSCRIPTIONS) return { code: 'PULSE_ERR_TOO_MANY_SUBSCRIPTIONS', message: ERRORS.PULSE_ERR_TOO_MANY_SUBSCRIPTIONS.message }
  return series
}

/** The resume point of an event stream: `Last-Event-ID`, or `?lastEventId=` where headers cannot be set. */
export function eventStreamResumePoint (lastEventIdHeader: string | undefined, query: StreamQuery): number | undefined {
  return parseEventId(lastEventIdHeader ?? query('lastEventId'))
}

/** Joins an event stream's channels, then queues the resume replay. */
export async function startEventStream (hub: ChannelHub, pulse: GatewayContext, actor: ConnectionActor, series: readonly SeriesKey[], since: number | undefined): Promise<void> {
  await Promise.all(series.map(async (key) => await hub.join(actor, key)))
  if (since === undefined) return
  actor.offer(await replaySince(pulse.cache, series, since, pulse.now()))
}
