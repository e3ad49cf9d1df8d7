import { type RunContext, type ScenarioRun, sleep } from '../context.js'

interface Answer { status: number, ms: number, body: { ticker?: unknown, resolution?: unknown, buckets?: unknown, cache_hit?: unknown, query_time_ms?: unknown } | undefined }

async function query (ctx: RunContext, ticker: string, resolution: string): Promise<Answer> {
  const began = performance.now()
  try {
    const res = await fetch(`${ctx.url}/api/v2/timeseries/${ticker}?resolution=${resolution}`, { signal: AbortSignal.timeout(30_000) })
    const text = await res.text()
    const ms = performance.now() - began
    let body: Answer['body']
    try { body = JSON.parse(text) as Answer['body'] } catch {}
    return { status: res.status, ms, body }
  } catch {
    return { status: 0, ms: performance.now() - began, body: undefined }
  }
}

/**
 * Reads every series once, unmeasured: the targets are for a cache in steady state, and the
 * first read of a series is a miss by design. `k6/history-rest.js` does the same in setup().
 */
export async function warmHistory (ctx: RunContext): Promise<void> {
  await Promise.all(ctx.tickers.flatMap((ticker) => ctx.config.resolutions.map(async (resolution) => await query(ctx, ticker, resolution))))
}

async function user (ctx: RunContext, run: ScenarioRun): Promise<void> {
  const { metrics, tickers } = ctx
  const { resolutions } = ctx.config
  const [low, high] = run.definition.thinkMs ?? [200, 1000]
  // Users start at random moments within their first think time, as k6 VUs drift apart.
  await sleep(Math.random() * high)
  while (Date.now() < ctx.endAt) {
    const ticker = tickers[Math.floor(Math.random() * tickers.length)] as string
    const resolution = resolutions[Math.floor(Math.random() * resolutions.length)] as string
    const answer = await query(ctx, ticker, resolution)
    metrics.trend('history_latency_ms').add(answer.ms)
    const body = answer.body
    const ok = metrics.check('history answers 200', answer.status === 200, `status ${answer.status}`) &&
      metrics.check('history body matches the query', body !== undefined && body.ticker === ticker && body.resolution === resolution && Array.isArray(body.buckets), `${ticker}#${resolution}`)
    if (!ok) metrics.counter('http_errors').add()
    if (body !== undefined && typeof body.cache_hit === 'boolean') {
      metrics.rate('cache_hit').add(body.cache_hit)
      if (typeof body.query_time_ms === 'number') metrics.trend('history_server_ms').add(body.query_time_ms)
    }
    await sleep(Math.min(low + Math.random() * (high - low), ctx.endAt - Date.now()))
  }
}

/** Runs `run.users` history readers with think time between queries. */
export async function runHistoryRest (ctx: RunContext, run: ScenarioRun): Promise<void> {
  await Promise.all(Array.from({ length: run.users }, async () => await user(ctx, run)))
}
