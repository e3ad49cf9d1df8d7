import { Redis } from 'ioredis'
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { RedisKeys } from '../../shared/adapters/redis/keys.js'
import { RedisHotState } from '../../shared/adapters/redis/redis-hot-state.js'
import { labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { foldWithTerm } from '../helpers/fold-with-term.js'
import { startRedisServer } from '../helpers/redis-server.js'

const DAY = 86_400_000
/** PTTLs of one ticker's keys are read one after another: a few ms apart. */
const SLACK_MS = 1000

function item (id: string, ts: number): ScoredItem {
  return { id, ticker: 'AAPL', ts, score: 0.3, label: labelFor(0.3), source: 'tiingo' }
}

// A ticker's position hash used to have no expiry: once a ticker stopped getting items (it
// was removed at run time) its buckets expired and its position stayed forever.
t.test("a ticker's position expires with its buckets: no sooner, and not never", async (t) => {
  const server = await startRedisServer(t)
  const env = `t${randomUUID().slice(0, 8)}`
  const hot = new RedisHotState({ connection: server.url, env, dedupeWindowMs: DAY })
  t.teardown(async () => await hot.close())
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const keys = new RedisKeys(env)

  const fold = async (batch: ScoredItem[]): Promise<void> => {
    for (;;) {
      const outcome = await foldWithTerm(hot, 'AAPL', batch, { now: Date.now() })
      if (outcome.kind === 'applied') return
      await hot.seed(outcome.refs, [])
    }
  }
  /** The position's PTTL and the longest PTTL of the ticker's bucket keys. */
  const lives = async (): Promise<{ position: number, longestBucket: number }> => {
    const bucketKeys = await redis.keys(`pulse:${env}:{AAPL}:b:*`)
    const bucketTtls = await Promise.all(bucketKeys.map(async (k) => await redis.pttl(k)))
    t.ok(bucketTtls.every((ms) => ms > 0), 'every bucket key expires')
    return { position: await redis.pttl(keys.position('AAPL')), longestBucket: Math.max(...bucketTtls) }
  }

  const now = Date.now()
  await fold([item('now', now)])
  const first = await lives()
  t.ok(first.position > 0, `the position expires (PTTL ${first.position})`)
  t.ok(first.position >= first.longestBucket - SLACK_MS, `no sooner than the longest-lived bucket (${first.position} ≥ ${first.longestBucket} ms)`)

  // A late item writes buckets that end sooner: the position keeps its later expiry.
  await fold([item('late', now - 40 * DAY)])
  const afterLate = await lives()
  t.ok(afterLate.position >= first.position - SLACK_MS, `a late item does not pull the expiry in (${afterLate.position} ms)`)
  t.ok(afterLate.position >= afterLate.longestBucket - SLACK_MS, 'still no sooner than any bucket')

  // A position written before expiries existed gets one with the next fold.
  await redis.persist(keys.position('AAPL'))
  await fold([item('next', Date.now())])
  const upgraded = await lives()
  t.ok(upgraded.position > 0 && upgraded.position >= upgraded.longestBucket - SLACK_MS, `a position without an expiry gets one (${upgraded.position} ms)`)
})
