import type { Test } from 'tap'
import type { Bucket, ScoredItem } from '../../shared/timeseries/bucket.js'
import { differences, expectedBuckets } from './expected.js'
import { type PulseOnRedis, postUntilAccepted, waitForArchive } from './fault-cluster.js'
import type { ManagedProcess } from './processes.js'
import { until, type WsTestClient } from './stream-clients.js'

/** The series a failover test watches: its tickers at some resolutions. */
export interface Watched {
  tickers: readonly string[]
  resolutions: readonly string[]
}

/** Problems between what a client holds and the fold of `items`, for the watched series. */
export function clientProblems (client: WsTestClient, items: readonly ScoredItem[], watched: Watched): string[] {
  const problems: string[] = []
  for (const [key, e] of expectedBuckets(items, Date.now())) {
    if (!watched.resolutions.includes(e.ref.resolution)) continue
    const held = client.state.buckets.get(`${e.ref.ticker}#${e.ref.resolution}@${new Date(e.ref.start).toISOString().replace('.000Z', 'Z')}`)
    problems.push(...differences(held as unknown as Bucket | undefined, e.aggregate).map((p) => `${key}: ${p}`))
  }
  return problems
}

/** Problems between a gateway's history of the watched series and the fold of `items`. */
export async function historyProblems (gateway: ManagedProcess, items: readonly ScoredItem[], watched: Watched): Promise<string[]> {
  const held = new Map<string, Bucket>()
  for (const ticker of watched.tickers) {
    for (const resolution of watched.resolutions) {
      const res = await fetch(`${gateway.url}/api/v2/timeseries/${ticker}?resolution=${resolution}`)
      const body = await res.json() as { buckets: Array<Bucket & { timestamp: string }>, partial_bucket: (Bucket & { timestamp: string }) | null }
      for (const bucket of [...body.buckets, ...(body.partial_bucket === null ? [] : [body.partial_bucket])]) {
        held.set(`${ticker}#${resolution}@${Date.parse(bucket.timestamp)}`, bucket)
      }
    }
  }
  const problems: string[] = []
  for (const [key, e] of expectedBuckets(items, Date.now())) {
    if (!watched.resolutions.includes(e.ref.resolution)) continue
    problems.push(...differences(held.get(`${e.ref.ticker}#${e.ref.resolution}@${e.ref.start}`), e.aggregate).map((p) => `${key}: ${p}`))
  }
  return problems
}

/** Posts `items` in batches of 100 across the gateways, each until accepted, and records them in `accepted`. */
export async function postAll (gateways: readonly ManagedProcess[], items: readonly ScoredItem[], accepted: ScoredItem[]): Promise<void> {
  for (let i = 0; i < items.length; i += 100) {
    await postUntilAccepted(gateways[(i / 100) % gateways.length] as ManagedProcess, items.slice(i, i + 100))
    accepted.push(...items.slice(i, i + 100))
  }
}

/**
 * Asserts that the archive, the history of every gateway and every client (`clients[i]` on
 * gateway `i`) come to hold the exact fold of `accepted`, waiting a while for each.
 */
export async function assertConverged (t: Test, what: string, pulse: PulseOnRedis, clients: readonly WsTestClient[], accepted: readonly ScoredItem[], watched: Watched): Promise<void> {
  const archived = await waitForArchive(pulse, accepted, 45_000)
  t.same(archived.problems.slice(0, 5), [], `${what}: the archive holds the fold of every accepted item (${archived.buckets} buckets)`)
  for (const [i, gateway] of pulse.gateways.entries()) {
    let problems: string[] = []
    const deadline = Date.now() + 20_000
    do {
      problems = await historyProblems(gateway, accepted, watched)
      if (problems.length === 0) break
      await new Promise((resolve) => setTimeout(resolve, 250))
    } while (Date.now() < deadline)
    t.same(problems.slice(0, 5), [], `${what}: history on gateway ${i + 1} is that fold`)
  }
  for (const [i, client] of clients.entries()) {
    await until(() => clientProblems(client, accepted, watched).length === 0, 20_000, `client ${i + 1}`).catch(() => {})
    t.same(clientProblems(client, accepted, watched).slice(0, 5), [], `${what}: the WebSocket client on gateway ${i + 1} holds that fold`)
  }
}
