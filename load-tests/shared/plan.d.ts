/** One streaming or request scenario of `scenarios.json`. */
export interface ScenarioDefinition {
  description: string
  users?: number
  duration: string
  rampUp?: string
  tickersPerUser?: number
  resolutionsPerUser?: number
  resolutions?: string[]
  switchEveryMs?: number
  thinkMs?: [number, number]
  itemsPerSecond?: number
  batchSize?: number
  source?: string
  seedHistory?: { hours: number, everyMinutes: number, batchSize: number }
  /** Metrics the scenario emits; thresholds apply only to these. */
  metrics: string[]
}

/** A set of k6-syntax thresholds, per metric. */
export interface Profile {
  description: string
  thresholds: Record<string, string[]>
}

/** The whole of `load-tests/scenarios.json`. */
export interface LoadTestConfig {
  version: number
  tickers: string[]
  resolutions: string[]
  scenarios: Record<'dashboard-ws' | 'history-rest' | 'sse-legacy' | 'ingest', ScenarioDefinition> & Record<string, ScenarioDefinition | undefined>
  profiles: Record<string, Profile>
}

/** What one user of a streaming scenario subscribes to. */
export interface Subscription {
  tickers: string[]
  resolutions: string[]
}

/** Parses a k6-style duration (`500ms`, `20s`, `10m`, `1h`) into milliseconds. */
export function parseDuration (text: string): number
/** `count` entries of `list` starting at `offset`, wrapping around, without repeats. */
export function pick<T> (list: readonly T[], count: number, offset: number): T[]
/** What user number `user` of a streaming scenario watches. */
export function userSubscription (config: LoadTestConfig, scenario: ScenarioDefinition, user: number): Subscription
/** The thresholds of `profile` for the metrics a scenario emits. */
export function thresholdsFor (config: LoadTestConfig, profile: string, metrics: readonly string[]): Record<string, string[]>
