import { historyBatches, type LoadItem, liveBatch } from '../../shared/items.js'
import { type RunContext, sleep } from '../context.js'

/** Posts new items no faster than this many batches at once; a slow server gets fewer, not a pile-up. */
const MAX_IN_FLIGHT = 64
const SOURCE_FALLBACK = 'loadtest'

/** POSTs one batch with the ingest key; true on 202. */
export async function postItems (ctx: RunContext, items: LoadItem[]): Promise<{ ok: boolean, status: number, ms: number }> {
  const began = performance.now()
  try {
    const res = await fetch(`${ctx.url}/api/v2/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ctx.ingestKey ?? ''}` },
      body: JSON.stringify(items),
      signal: AbortSignal.timeout(30_000)
    })
    await res.arrayBuffer()
    return { ok: res.status === 202, status: res.status, ms: performance.now() - began }
  } catch {
    return { ok: false, status: 0, ms: performance.now() - began }
  }
}

/** Posts a few hours of history (before the run, not measured) so history queries read real buckets. */
export async function seedHistory (ctx: RunContext): Promise<number> {
  const definition = ctx.config.scenarios.ingest
  const seed = definition.seedHistory
  if (seed === undefined || ctx.ingestKey === undefined) return 0
  const batches = historyBatches({ tickers: ctx.tickers, hours: seed.hours, everyMinutes: seed.everyMinutes, batchSize: seed.batchSize, source: definition.source ?? SOURCE_FALLBACK, runId: `${ctx.runId}h`, now: Date.now() })
  let posted = 0
  for (const batch of batches) {
    const result = await postItems(ctx, batch)
    if (!result.ok) throw new Error(`seeding history failed: POST /api/v2/items answered ${result.status}`)
    posted += batch.length
  }
  return posted
}

/**
 * The producer: `itemsPerSecond` in batches of `batchSize`, paced by the clock (not by
 * responses) so the offered rate stays what was asked, until `ctx.endAt`.
 */
export async function runIngest (ctx: RunContext, itemsPerSecond: number): Promise<void> {
  const definition = ctx.config.scenarios.ingest
  const batchSize = definition.batchSize ?? 10
  const source = definition.source ?? SOURCE_FALLBACK
  const latency = ctx.metrics.trend('ingest_latency_ms')
  const failed = ctx.metrics.rate('ingest_failed')
  const items = ctx.metrics.counter('ingest_items')
  const intervalMs = 1000 * batchSize / itemsPerSecond
  const inFlight = new Set<Promise<void>>()
  let seq = 0
  for (let next = Date.now(); next < ctx.endAt; next += intervalMs) {
    await sleep(next - Date.now())
    if (inFlight.size >= MAX_IN_FLIGHT) {
      failed.add(true)
      ctx.metrics.check('ingest keeps up', false, `${MAX_IN_FLIGHT} batches in flight`)
      continue
    }
    const batch = liveBatch({ tickers: ctx.tickers, size: batchSize, source, runId: ctx.runId, seq: seq++, now: Date.now() })
    const sent = postItems(ctx, batch).then((result) => {
      latency.add(result.ms)
      failed.add(!result.ok)
      if (ctx.metrics.check('ingest answers 202', result.ok, `status ${result.status}`)) items.add(batch.length)
    })
    inFlight.add(sent)
    sent.finally(() => inFlight.delete(sent)).catch(() => {})
  }
  await Promise.all(inFlight)
}
