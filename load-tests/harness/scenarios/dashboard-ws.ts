import WebSocket from 'ws'
import { eventProblem, isBucketEvent, liveLatencyMs } from '../../shared/events.js'
import { type Subscription, userSubscription } from '../../shared/plan.js'
import { type RunContext, type ScenarioRun, sleep } from '../context.js'

/** A snapshot not answered within this long counts as a failed switch. */
const SNAPSHOT_TIMEOUT_MS = 5000

interface Pending { sentAt: number, ticker: string, resolution: string }

/** Parsed JSON of a WS message; `any` because the checks below inspect arbitrary shapes. */
type EventData = Record<string, any>

/**
 * One dashboard user, as `k6/dashboard-ws.js` does it: open, subscribe, switch resolution
 * with a `snapshot` request every `switchEveryMs`, check every event, close at the end.
 */
async function user (ctx: RunContext, run: ScenarioRun, subscription: Subscription, arriveAt: number): Promise<void> {
  const { metrics } = ctx
  await sleep(arriveAt - Date.now())
  if (Date.now() >= ctx.endAt) return
  const switchEveryMs = run.definition.switchEveryMs ?? 3000
  const openedAt = performance.now()
  const ws = new WebSocket(`${ctx.wsUrl}/api/v2/ws`, { perMessageDeflate: false, handshakeTimeout: 30_000 })
  const pending = new Map<string, Pending>()
  let seq = 0
  let switcher: NodeJS.Timeout | undefined
  let closing = false

  ws.on('open', () => {
    metrics.trend('ws_connect_ms').add(performance.now() - openedAt)
    ws.send(JSON.stringify({ op: 'subscribe', tickers: subscription.tickers, resolutions: subscription.resolutions }))
    switcher = setInterval(() => {
      const ticker = subscription.tickers[seq % subscription.tickers.length] as string
      const resolution = subscription.resolutions[seq % subscription.resolutions.length] as string
      const id = `r${++seq}`
      pending.set(id, { sentAt: performance.now(), ticker, resolution })
      ws.send(JSON.stringify({ op: 'snapshot', id, ticker, resolution }))
    }, switchEveryMs)
  })

  ws.on('message', (raw) => {
    const receivedAt = Date.now()
    const receivedPerf = performance.now()
    metrics.counter('ws_events').add()
    let data: EventData
    try {
      data = JSON.parse(raw.toString()) as EventData
    } catch {
      metrics.check('event parses and matches the subscription', false, 'not JSON')
      return
    }
    const type = String(data.type)
    let problem = eventProblem(type, data, subscription)
    if (type === 'snapshot') {
      const request = pending.get(String(data.id))
      if (request === undefined) {
        problem = `snapshot for unknown request ${String(data.id)}`
      } else {
        pending.delete(String(data.id))
        metrics.trend('resolution_switch_ms').add(receivedPerf - request.sentAt)
        if (typeof data.query_time_ms === 'number') metrics.trend('snapshot_server_ms').add(data.query_time_ms)
        if (data.ticker !== request.ticker || data.resolution !== request.resolution) problem = 'snapshot answers another series'
      }
    } else if (type === 'error') {
      metrics.counter('ws_errors').add()
      problem = `error event ${String(data.code)}: ${String(data.message)}`
    } else if (isBucketEvent(type) && problem === undefined) {
      const latency = liveLatencyMs(type, data, receivedAt)
      if (latency !== undefined) metrics.trend('live_update_latency_ms').add(Math.max(0, latency))
    }
    metrics.check('event parses and matches the subscription', problem === undefined, problem)
  })

  await new Promise<void>((resolve) => {
    const stopAt = setTimeout(() => {
      closing = true
      ws.close(1000)
      // A server that never completes the close handshake must not hold the run open.
      setTimeout(() => { ws.terminate(); resolve() }, 5000).unref()
    }, Math.max(0, ctx.endAt - Date.now()))
    ws.on('error', (err) => {
      metrics.counter('ws_errors').add()
      metrics.check('websocket connects and stays up', false, err.message)
    })
    ws.on('close', (code) => {
      clearTimeout(stopAt)
      clearInterval(switcher)
      if (!closing) metrics.check('websocket connects and stays up', false, `closed early with ${code}`)
      resolve()
    })
  })
  const now = performance.now()
  for (const request of pending.values()) {
    if (now - request.sentAt > SNAPSHOT_TIMEOUT_MS) metrics.check('snapshot answered', false, `${request.ticker}#${request.resolution} unanswered`)
  }
}

/** Runs `run.users` dashboard users, connecting evenly over the ramp-up. */
export async function runDashboardWs (ctx: RunContext, run: ScenarioRun): Promise<void> {
  const config = { ...ctx.config, tickers: ctx.tickers }
  const users: Array<Promise<void>> = []
  for (let i = 0; i < run.users; i++) {
    const arriveAt = ctx.startAt + Math.floor(i / run.users * ctx.rampUpMs)
    users.push(user(ctx, run, userSubscription(config, run.definition, i), arriveAt))
  }
  await Promise.all(users)
}
