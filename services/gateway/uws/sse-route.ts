import type { HttpRequest, HttpResponse } from 'uWebSockets.js'
import { parseEventId } from '../streaming/event-id.js'
import { openConnection } from '../streaming/hub-plugin.js'
import { MAX_SUBSCRIPTIONS } from '../streaming/limits.js'
import { SSE_HEADERS, SSE_PREAMBLE, sseSink } from '../streaming/sse-sink.js'
import { listParam, replaySince, selectSeries } from '../streaming/subscriptions.js'
import { admit, type EdgeContext } from './edge-admission.js'
import { readRequest, sendError, statusLine } from './edge-request.js'
import { uwsSseWriter } from './sse-writer.js'

/**
 * `GET /api/v2/stream` on uWS: the checks and order of `streaming/sse-plugin.ts` (selection
 * 400/404 first, then access and the connection slot), then a connection actor writing
 * through `sseSink`.
 */
export function sseRoute (context: EdgeContext): (res: HttpResponse, req: HttpRequest) => void {
  const { app, hub, known } = context
  const { config } = app.pulse
  return (res, req) => {
    const request = readRequest(res, req)
    const tickers = listParam(request.query.get('tickers') ?? undefined)
    const resolutions = request.query.get('resolutions')
    const series = selectSeries(tickers.length === 0 ? config.tickers : tickers, resolutions === null ? ['1m'] : listParam(resolutions), known)
    if (!Array.isArray(series)) return sendError(res, series.code, series.message)
    if (series.length === 0) return sendError(res, 'PULSE_ERR_BAD_RESOLUTION')
    if (series.length > MAX_SUBSCRIPTIONS) return sendError(res, 'PULSE_ERR_TOO_MANY_SUBSCRIPTIONS')
    const admitted = admit(context, request, false)
    if ('code' in admitted) return sendError(res, admitted.code, undefined, admitted.headers)

    let open = true
    const writer = uwsSseWriter(res, () => open, () => actor.drained())
    res.writeStatus(statusLine(200))
    for (const [name, value] of Object.entries(SSE_HEADERS)) res.writeHeader(name, value)
    res.write(SSE_PREAMBLE)
    const actor = openConnection(app, sseSink(writer), 'sse', () => admitted.release())
    res.onAborted(() => {
      open = false
      actor.onSocketClosed()
    })
    const since = parseEventId(request.headers['last-event-id'] ?? request.query.get('lastEventId') ?? undefined)
    const start = async (): Promise<void> => {
      await Promise.all(series.map(async (key) => await hub.join(actor, key)))
      if (since === undefined) return
      for (const event of await replaySince(app.pulse.cache, series, since, app.pulse.now())) actor.offer(event)
    }
    start().catch((err: unknown) => app.log.warn({ err }, 'event stream start failed'))
  }
}
