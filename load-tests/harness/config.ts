import { readFile } from 'node:fs/promises'
import type { LoadTestConfig } from '../shared/plan.js'

/** Where the scenario definitions live: the same file the k6 scripts `open()`. */
export const SCENARIOS_FILE = new URL('../scenarios.json', import.meta.url)

/** The streaming and request scenarios a run may select (ingest runs beside them). */
export const SCENARIO_NAMES = ['dashboard-ws', 'history-rest', 'sse-legacy', 'ingest'] as const
export type ScenarioName = typeof SCENARIO_NAMES[number]

/** Reads `load-tests/scenarios.json`. */
export async function loadScenarios (): Promise<LoadTestConfig> {
  const config = JSON.parse(await readFile(SCENARIOS_FILE, 'utf8')) as LoadTestConfig
  for (const name of SCENARIO_NAMES) {
    if (config.scenarios[name] === undefined) throw new Error(`scenarios.json has no scenario ${name}`)
  }
  return config
}
