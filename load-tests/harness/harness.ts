import { randomBytes } from 'node:crypto'
import { parseDuration, thresholdsFor } from '../shared/plan.js'
import { loadScenarios, type ScenarioName } from './config.js'
import { type RunContext, type ScenarioRun, sleep } from './context.js'
import { type EmbeddedPulse, startEmbeddedPulse } from './embedded.js'
import { Metrics } from './metrics.js'
import { DEFAULT_URL, type HarnessOptions, UsageError } from './options.js'
import { formatReport } from './report.js'
import { runDashboardWs } from './scenarios/dashboard-ws.js'
import { runHistoryRest, warmHistory } from './scenarios/history-rest.js'
import { runIngest, seedHistory } from './scenarios/ingest.js'
import { runSseLegacy } from './scenarios/sse-legacy.js'
import { evaluate, parseThreshold } from './thresholds.js'

/** The outcome of a harness run. */
export interface HarnessResult {
  ok: boolean
  report: string
}

const RUNNERS: Record<Exclude<ScenarioName, 'ingest'>, (ctx: RunContext, run: ScenarioRun) => Promise<void>> = {
  'dashboard-ws': runDashboardWs,
  'history-rest': runHistoryRest,
  'sse-legacy': runSseLegacy
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])

async function waitUntilReady (url: string): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) })
      if (res.ok) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url}/healthz did not answer 200 within 30 s`)
    await sleep(200)
  }
}

async function servedTickers (url: string, wanted: string[]): Promise<string[]> {
  try {
    const res = await fetch(`${url}/api/v2/tickers`, { signal: AbortSignal.timeout(10_000) })
    const body = await res.json() as { tickers?: Array<{ ticker: string }> }
    const served = (body.tickers ?? []).map((entry) => entry.ticker)
    const both = wanted.filter((ticker) => served.includes(ticker))
    return both.length > 0 ? both : served.length > 0 ? served : wanted
  } catch {
    return wanted
  }
}

/**
 * Runs the selected scenarios of `scenarios.json` at once against one Pulse (started here
 * with `--embedded`), then checks the profile's thresholds on what the scenarios measured.
 */
export async function runHarness (options: HarnessOptions, log: (line: string) => void = console.error): Promise<HarnessResult> {
  const config = await loadScenarios()
  if (config.profiles[options.profile] === undefined) throw new UsageError(`unknown profile ${options.profile}; known: ${Object.keys(config.profiles).join(', ')}`)
  const streaming = options.scenarios.filter((name): name is Exclude<ScenarioName, 'ingest'> => name !== 'ingest')
  // --users applies to the main scenario: dashboard-ws when it runs, else the first selected.
  const main = streaming.includes('dashboard-ws') ? 'dashboard-ws' : streaming[0]
  const runs = new Map<string, ScenarioRun>()
  for (const name of streaming) {
    const definition = config.scenarios[name] as ScenarioRun['definition']
    runs.set(name, { definition, users: name === main && options.users !== undefined ? options.users : definition.users ?? 1 })
  }
  const ingestDefinition = config.scenarios.ingest
  const rampUpMs = options.rampUpMs ?? Math.max(0, ...[...runs.values()].map((run) => run.definition.rampUp === undefined ? 0 : parseDuration(run.definition.rampUp)))
  const steadyMs = options.durationMs ?? parseDuration((runs.get(main ?? '') ?? { definition: ingestDefinition }).definition.duration)

  let embedded: EmbeddedPulse | undefined
  let url = options.url ?? DEFAULT_URL
  let ingestKey = options.ingestKey
  if (options.embedded) {
    const users = [...runs.values()].reduce((sum, run) => sum + run.users, 0)
    log(`starting an embedded Pulse for ${users} users ...`)
    embedded = await startEmbeddedPulse({ maxConnections: Math.max(10_000, users + 1000) })
    url = embedded.url
    ingestKey = embedded.ingestKey
    log(`embedded Pulse (pid ${embedded.pid}) at ${url}`)
  } else if (!LOOPBACK.has(new URL(url).hostname)) {
    log(`target ${url} is not this machine: given explicitly, so it runs`)
  }

  try {
    await waitUntilReady(url)
    const metrics = new Metrics()
    const tickers = await servedTickers(url, config.tickers)
    const ctx: RunContext = {
      url,
      wsUrl: url.replace(/^http/, 'ws'),
      config,
      tickers,
      metrics,
      ingestKey,
      startAt: 0,
      endAt: 0,
      rampUpMs,
      runId: `lt${Date.now().toString(36)}${randomBytes(3).toString('hex')}`
    }
    const ingestOn = ingestKey !== undefined && (options.scenarios.includes('ingest') || streaming.some((name) => name !== 'history-rest'))
    const itemsPerSecond = ingestOn ? options.itemsPerSecond ?? ingestDefinition.itemsPerSecond ?? 50 : undefined
    if (!ingestOn && streaming.some((name) => name !== 'history-rest')) log('no INGEST_API_KEY: nothing is ingested, so live update latency gets no samples')
    if (options.seedHistory && runs.has('history-rest') && ingestKey !== undefined) {
      log(`seeded ${await seedHistory(ctx)} history items`)
    }
    if (itemsPerSecond !== undefined && options.warmUpMs > 0) {
      // Unmeasured: a fresh process loads modules and compiles hot paths on its first
      // flushes, pausing its event loop for 100 ms and more; a deployment is past that.
      log(`warming up for ${Math.round(options.warmUpMs / 1000)} s ...`)
      await runIngest({ ...ctx, metrics: new Metrics(), endAt: Date.now() + options.warmUpMs }, itemsPerSecond)
    }
    if (runs.has('history-rest')) await warmHistory(ctx)

    ctx.startAt = Date.now()
    ctx.endAt = ctx.startAt + rampUpMs + steadyMs
    log(`running ${[...runs.keys(), ...(ingestOn ? ['ingest'] : [])].join(', ')} for ${Math.round((rampUpMs + steadyMs) / 1000)} s ...`)
    const work = [...runs].map(async ([name, run]) => await RUNNERS[name as keyof typeof RUNNERS](ctx, run))
    if (itemsPerSecond !== undefined) work.push(runIngest(ctx, itemsPerSecond))
    await Promise.all(work)

    const metricNames = [...runs.values()].flatMap((run) => run.definition.metrics)
    if (ingestOn) metricNames.push(...ingestDefinition.metrics)
    const thresholds = Object.entries(thresholdsFor(config, options.profile, [...new Set(metricNames)]))
      .flatMap(([metric, expressions]) => expressions.map((expression) => parseThreshold(metric, expression)))
    const results = evaluate(thresholds, metrics.all)
    const report = formatReport({
      url,
      profile: options.profile,
      scenarios: [...runs.keys()],
      users: Object.fromEntries([...runs].map(([name, run]) => [name, run.users])),
      seconds: (Date.now() - ctx.startAt) / 1000,
      itemsPerSecond
    }, metrics, results)
    return { ok: results.every((result) => result.ok), report }
  } finally {
    await embedded?.stop()
  }
}
