/** A score with its sign: `+0.23`, `−0.05`, `0.00`. */
export function formatScore (value: number): string {
  const fixed = Math.abs(value).toFixed(2)
  if (fixed === '0.00') return '0.00'
  return `${value > 0 ? '+' : '−'}${fixed}`
}

/** "just now", "42 s ago", "3 min ago", "2 h ago". */
export function formatAge (ms: number): string {
  if (ms < 5_000) return 'just now'
  if (ms < 60_000) return `${Math.round(ms / 1000)} s ago`
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min ago`
  return `${Math.round(ms / 3_600_000)} h ago`
}

/** "1 m 05 s", "2 h 10 m": time left in a bucket. */
export function formatRemaining (ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, '0')} s`
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} m`
}

/** UTC time of a bucket start, short: `14:35` or `Dec 21` for day buckets. */
export function formatBucketTime (iso: string, daily: boolean): string {
  const date = new Date(iso)
  if (daily) return date.toLocaleDateString('en', { month: 'short', day: 'numeric', timeZone: 'UTC' })
  return date.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', timeZone: 'UTC' })
}
