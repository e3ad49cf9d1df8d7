import type { LoadTestConfig, ScenarioDefinition } from '../shared/plan.js'
import type { Metrics } from './metrics.js'

/** What every scenario runner gets: the target, the shared metrics and the run's clock. */
export interface RunContext {
  url: string
  wsUrl: string
  config: LoadTestConfig
  /** Tickers the target serves, from scenarios.json intersected with `GET /api/v2/tickers`. */
  tickers: string[]
  metrics: Metrics
  ingestKey: string | undefined
  /** Epoch ms when the run started and when every scenario must have stopped. */
  startAt: number
  endAt: number
  rampUpMs: number
  runId: string
}

/** One scenario as it runs: its definition with command-line overrides applied. */
export interface ScenarioRun {
  definition: ScenarioDefinition
  users: number
}

/** Resolves after `ms`, or at once when `ms` is not positive. */
export async function sleep (ms: number): Promise<void> {
  if (ms <= 0) return
  await new Promise((resolve) => setTimeout(resolve, ms))
}
