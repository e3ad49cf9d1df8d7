import { EventSource } from 'eventsource'
import { eventProblem, isBucketEvent, liveLatencyMs } from '../../shared/events.js'
import { type Subscription, userSubscription } from '../../shared/plan.js'
import { type RunContext, type ScenarioRun, sleep } from '../context.js'

const NAMED_EVENTS = ['partial_bucket', 'bucket_update', 'heartbeat'] as const

/** One legacy SSE client, as `k6/sse-legacy.js` does it: listen, check every event, close at the end. */
async function user (ctx: RunContext, subscription: Subscription, arriveAt: number): Promise<void> {
  const { metrics } = ctx
  await sleep(arriveAt - Date.now())
  if (Date.now() >= ctx.endAt) return
  const query = `tickers=${subscription.tickers.join(',')}&resolutions=${subscription.resolutions.join(',')}`
  const openedAt = performance.now()
  const source = new EventSource(`${ctx.url}/api/v2/stream?${query}`)
  let opened = false

  source.addEventListener('open', () => {
    if (!opened) metrics.trend('sse_connect_ms').add(performance.now() - openedAt)
    opened = true
  })
  source.addEventListener('error', (event) => {
    metrics.counter('sse_errors').add()
    metrics.check('stream connects and stays up', false, event.message ?? `status ${String(event.code)}`)
  })
  const onEvent = (type: string, event: MessageEvent): void => {
    const receivedAt = Date.now()
    metrics.counter('sse_events').add()
    let data: unknown
    try {
      data = JSON.parse(String(event.data))
    } catch {
      metrics.check('event parses and matches the subscription', false, `${type}: data is not JSON`)
      return
    }
    const problem = eventProblem(type, data, subscription)
    if (problem === undefined && isBucketEvent(type)) {
      const latency = liveLatencyMs(type, data as { accepted_at?: unknown }, receivedAt)
      if (latency !== undefined) metrics.trend('sse_update_latency_ms').add(Math.max(0, latency))
      metrics.check('bucket event has an id', event.lastEventId !== '', `${type} without id`)
    }
    metrics.check('event parses and matches the subscription', problem === undefined, problem)
  }
  for (const type of NAMED_EVENTS) source.addEventListener(type, (event) => onEvent(type, event))
  // Unnamed events are not part of the contract: count them as problems.
  source.addEventListener('message', (event) => onEvent('message', event))

  await sleep(ctx.endAt - Date.now())
  source.close()
}

/** Runs `run.users` SSE clients, connecting evenly over the ramp-up. */
export async function runSseLegacy (ctx: RunContext, run: ScenarioRun): Promise<void> {
  const config = { ...ctx.config, tickers: ctx.tickers }
  const users: Array<Promise<void>> = []
  for (let i = 0; i < run.users; i++) {
    const arriveAt = ctx.startAt + Math.floor(i / run.users * ctx.rampUpMs)
    users.push(user(ctx, userSubscription(config, run.definition, i), arriveAt))
  }
  await Promise.all(users)
}
