import t from 'tap'
import { figuresOf, growthOf, hotKeysWarmupSeconds, theilSen } from '../../scripts/soak/report.js'
import type { Sample } from '../../scripts/soak/sampler.js'
import { applyRetentionScale } from '../../shared/timeseries/resolutions.js'

/** A cluster sample every 30 s; `at` in seconds, the rest from `figures`. */
function sample (at: number, figures: { heap?: number, rss?: number, keys?: number, noTtl?: number }): Sample {
  return {
    at,
    rss: { worker1: figures.rss ?? 200e6 },
    heap: { worker1: figures.heap ?? 60e6 },
    external: { worker1: 20e6 },
    archiveBytes: 1e6,
    archiveRows: 100,
    archiveLiveRows: 100,
    archiveCoarseLiveRows: 50,
    redisUsedMemory: 10e6 * (figures.keys ?? 20_000) / 20_000,
    redisKeys: figures.keys ?? 20_000,
    redisPersistentKeys: figures.noTtl ?? 2000,
    redisCommandsPerSecond: 10_000,
    queueDepth: 0,
    queueAgeMs: 100
  }
}

function run (minutes: number, figures: (at: number, i: number) => Parameters<typeof sample>[1]): Sample[] {
  return Array.from({ length: minutes * 2 + 1 }, (_, i) => sample(i * 30, figures(i * 30, i)))
}

const verdict = (samples: Sample[], figure: string, warmupSeconds = 150): { flat: boolean, notJudged: string | undefined } => {
  const growth = growthOf(figuresOf('cluster', ['worker1'], 1000), samples, warmupSeconds).find((g) => g.figure === figure)
  if (growth === undefined) throw new Error(`no figure ${figure}`)
  return { flat: growth.flat, notJudged: growth.notJudged }
}

t.test('Redis keys are judged only once the bucket keys can have levelled', async (t) => {
  applyRetentionScale(1440)
  t.teardown(() => applyRetentionScale(1))
  t.equal(hotKeysWarmupSeconds(), 16 * 60, '10m + 1 min of retention + 5 min of grace (its floor under a test scale)')
  const rising = (at: number): { keys: number } => ({ keys: 20_000 + Math.min(at, 16 * 60) * 10 })
  t.match(verdict(run(10, rising), 'redis keys'), { notJudged: /levels after 16 min/ }, 'a 10-minute run: shown, not judged')
  t.match(verdict(run(10, rising), 'redis MB'), { notJudged: /levels after 16 min/ })
  t.same(verdict(run(20, rising), 'redis keys'), { flat: true, notJudged: undefined }, 'a 20-minute run judges it after 16 minutes: flat')
  const leaking = (at: number): { keys: number } => ({ keys: 20_000 + at * 10 })
  t.same(verdict(run(20, leaking), 'redis keys'), { flat: false, notJudged: undefined }, 'and keys still rising then grow')
})

t.test('keys without a TTL are judged in every run, with one key per ticker of noise', async (t) => {
  t.same(verdict(run(10, (_, i) => ({ noTtl: 2000 + (i % 2) * 900 })), 'keys no TTL'), { flat: true, notJudged: undefined }, 'dirty sets coming and going')
  t.same(verdict(run(10, (at) => ({ noTtl: 2000 + at * 10 })), 'keys no TTL'), { flat: false, notJudged: undefined }, 'ten keys a second that never go')
})

t.test('memory is judged by its trend, which dips and spikes do not make', async (t) => {
  const swinging = (_: number, i: number): { rss: number } => ({ rss: i % 4 === 1 ? 320e6 : 200e6 + (i % 2) * 40e6 })
  t.same(verdict(run(10, swinging), 'worker1 rss MB'), { flat: true, notJudged: undefined }, 'RSS swinging with the heap: flat')
  const climbing = (at: number, i: number): { rss: number } => ({ rss: 200e6 + at * 50e3 + (i % 2) * 40e6 })
  t.same(verdict(run(10, climbing), 'worker1 rss MB'), { flat: false, notJudged: undefined }, 'RSS that climbs under its swings: grows')
  const retained = (at: number): { heap: number } => ({ heap: 45e6 + at * 100e3 })
  t.same(verdict(run(10, retained), 'worker1 live heap MB'), { flat: false, notJudged: undefined }, 'a live heap that rises: grows')
  const wandering = (_: number, i: number): { heap: number } => ({ heap: 43e6 + ((i * 7) % 5) * 1e6 })
  t.same(verdict(run(10, wandering), 'worker1 live heap MB'), { flat: true, notJudged: undefined }, 'one that wanders by a few MB: flat')
  // A gateway's RSS in a 21-minute soak: 165–170 MB, dropping to 129–147 MB in one sample of
  // four or five when the allocator hands pages back. Two windows' least values called it +20 %.
  const dips = (_: number, i: number): { rss: number } => ({ rss: [134e6, 166e6, 168e6, 167e6, 146e6, 165e6, 167e6, 129e6, 166e6][i % 9] as number })
  t.same(verdict(run(20, dips), 'worker1 rss MB'), { flat: true, notJudged: undefined }, 'RSS with frequent dips: flat')
  const dipsThenGrowth = (at: number, i: number): { rss: number } => ({ rss: (dips(at, i).rss) + at * 30e3 })
  t.same(verdict(run(20, dipsThenGrowth), 'worker1 rss MB'), { flat: false, notJudged: undefined }, 'and the same dips over a climb: grows')
})

t.test('Theil–Sen: the line through most of the points', async (t) => {
  t.same(theilSen([[0, 1], [1, 3], [2, 5], [3, 7]]), { slope: 2, intercept: 1 })
  const { slope } = theilSen([[0, 10], [1, 10], [2, -50], [3, 10], [4, 10]])
  t.equal(slope, 0, 'an outlier does not tilt it')
})
