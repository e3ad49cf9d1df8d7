// Plain JavaScript so k6 (goja) and the Node harness share one copy; types in plan.d.ts.

const UNIT_MS = { ms: 1, s: 1000, m: 60000, h: 3600000 }

/** Parses a k6-style duration (`500ms`, `20s`, `10m`, `1h`) into milliseconds. */
export function parseDuration (text) {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(String(text).trim())
  if (match === null) throw new Error(`not a duration: ${JSON.stringify(text)}`)
  return Math.round(Number(match[1]) * UNIT_MS[match[2]])
}

/** `count` entries of `list` starting at `offset`, wrapping around, without repeats. */
export function pick (list, count, offset) {
  const n = Math.min(count, list.length)
  const out = []
  for (let i = 0; i < n; i++) out.push(list[(offset + i) % list.length])
  return out
}

/**
 * What user number `user` of a streaming scenario watches. Offsets differ per user so the
 * users together cover every ticker and resolution, as a real audience would.
 */
export function userSubscription (config, scenario, user) {
  const tickers = pick(config.tickers, scenario.tickersPerUser, user * scenario.tickersPerUser)
  const resolutions = scenario.resolutions !== undefined
    ? scenario.resolutions.slice()
    : pick(config.resolutions, scenario.resolutionsPerUser, user)
  return { tickers, resolutions }
}

/** The thresholds of `profile` for the metrics a scenario emits (k6 rejects thresholds on unknown metrics). */
export function thresholdsFor (config, profile, metrics) {
  const chosen = config.profiles[profile]
  if (chosen === undefined) throw new Error(`unknown profile ${JSON.stringify(profile)}; known: ${Object.keys(config.profiles).join(', ')}`)
  const out = {}
  for (const metric of metrics) {
    const list = chosen.thresholds[metric]
    if (list !== undefined) out[metric] = list.slice()
  }
  return out
}
