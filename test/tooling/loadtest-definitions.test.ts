import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { checkK6Scripts, k6ModuleProblem } from '../../load-tests/check-k6.js'
import { buildCompat } from '../../load-tests/k6-compat.js'
import { loadScenarios } from '../../load-tests/harness/config.js'
import { Counter, type Metric, Metrics, Rate, Trend } from '../../load-tests/harness/metrics.js'
import { parseOptions, UsageError } from '../../load-tests/harness/options.js'
import { evaluate, parseThreshold } from '../../load-tests/harness/thresholds.js'

const K6_DIR = new URL('../../load-tests/k6/', import.meta.url)

t.test('every threshold of every profile parses and names a metric some scenario emits', async (t) => {
  const config = await loadScenarios()
  const emitted = new Set(Object.values(config.scenarios).flatMap((scenario) => scenario?.metrics ?? []))
  for (const [name, profile] of Object.entries(config.profiles)) {
    for (const [metric, expressions] of Object.entries(profile.thresholds)) {
      t.ok(emitted.has(metric), `${name}: ${metric} is emitted`)
      for (const expression of expressions) t.doesNotThrow(() => parseThreshold(metric, expression), `${name}: ${metric} ${expression}`)
    }
  }
  t.ok(config.profiles.seed !== undefined && config.profiles.pulse !== undefined)
})

t.test('the k6 scripts bundle and declare the metrics scenarios.json lists', async (t) => {
  t.same(await checkK6Scripts(), [])
  const config = await loadScenarios()
  const sources = await Promise.all(['dashboard-ws.js', 'history-rest.js', 'sse-legacy.js', 'lib/ingest.js'].map(async (file) => await readFile(new URL(file, K6_DIR), 'utf8')))
  const declared = new Set(sources.join('\n').match(/new (?:Trend|Rate|Counter)\('([a-z0-9_]+)'/g)?.map((m) => m.slice(m.indexOf("'") + 1, -1)))
  for (const [name, scenario] of Object.entries(config.scenarios)) {
    for (const metric of scenario?.metrics ?? []) {
      if (metric !== 'checks') t.ok(declared.has(metric), `${name}: k6 declares ${metric}`)
    }
  }
})

t.test('the k6 check refuses modules current k6 removed or deprecated, and accepts the ones it serves', async (t) => {
  t.equal(k6ModuleProblem('k6/websockets'), undefined)
  t.equal(k6ModuleProblem('k6/x/sse'), undefined, 'extensions are for an xk6 build')
  t.match(k6ModuleProblem('k6/experimental/timers'), /removed.*globals/)
  t.match(k6ModuleProblem('k6/experimental/websockets'), /deprecated.*k6\/websockets/)
  t.match(k6ModuleProblem('k6/nope'), /not a k6 module/)
  const dir = await mkdtemp(join(tmpdir(), 'pulse-k6-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await mkdir(join(dir, 'lib'))
  await writeFile(join(dir, 'lib', 'timers.js'), "export { setInterval } from 'k6/experimental/timers'\n")
  await writeFile(join(dir, 'old.js'), "import { WebSocket } from 'k6/experimental/websockets'\nimport { setInterval } from './lib/timers.js'\nexport default function () { setInterval(() => new WebSocket('ws://x'), 1) }\n")
  await writeFile(join(dir, 'new.js'), "import { WebSocket } from 'k6/websockets'\nexport default function () { setTimeout(() => new WebSocket('ws://x'), 1) }\n")
  const problems = await checkK6Scripts(dir)
  t.equal(problems.length, 2, problems.join('\n'))
  t.ok(problems.every((p) => p.startsWith(join(dir, 'old.js'))), 'only the script with retired imports fails')
  t.ok(problems.some((p) => p.includes('lib/timers.js imports k6/experimental/timers')), 'an import in a local module is found')
})

t.test('bundles for k6 older than 1.6 use the experimental WebSocket module, and the experimental timers before 0.51', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pulse-k6-compat-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  for (const [version, timers] of [['0.50', true], ['1.5', false]] as const) {
    const files = await buildCompat(version, join(dir, version))
    t.same(files.map((f) => f.slice(join(dir, version).length + 1)).sort(), ['dashboard-ws.js', 'history-rest.js', 'ingest.js', 'sse-legacy.js'])
    const dashboard = await readFile(join(dir, version, 'dashboard-ws.js'), 'utf8')
    t.match(dashboard, 'from "k6/experimental/websockets"', `k6 ${version}: experimental WebSocket module`)
    t.notMatch(dashboard, /from ["']k6\/websockets["']/, `k6 ${version}: no k6/websockets`)
    t.equal(dashboard.includes("from 'k6/experimental/timers'"), timers, `k6 ${version}: timers ${timers ? 'imported' : 'global'}`)
    t.match(dashboard, "open('../scenarios.json')".replace(/'/g, '"'), 'scenarios are still read from beside the bundles')
  }
  await t.rejects(buildCompat('1.6', join(dir, 'new')), /runs load-tests\/k6\/ as it is/)
  await t.rejects(buildCompat('0.47', join(dir, 'old')), /0\.48 or later/)
})

t.test('thresholds evaluate like k6, and a metric without samples fails', async (t) => {
  const trend = new Trend()
  for (let i = 1; i <= 100; i++) trend.add(i)
  const rate = new Rate()
  for (let i = 0; i < 10; i++) rate.add(i < 9)
  const counter = new Counter()
  const metrics = new Map<string, Metric>([['lat', trend], ['hit', rate], ['errs', counter], ['empty', new Trend()]])
  const results = evaluate([
    parseThreshold('lat', 'p(95)<100'),
    parseThreshold('lat', 'p(99)<50'),
    parseThreshold('hit', 'rate>=0.9'),
    parseThreshold('errs', 'count<1'),
    parseThreshold('empty', 'p(95)<100'),
    parseThreshold('missing', 'avg<1')
  ], metrics)
  t.same(results.map((r) => r.ok), [true, false, true, true, false, false])
  t.ok(Math.abs((results[0]?.value ?? 0) - 95) < 0.1)
  t.throws(() => parseThreshold('lat', 'p95<100'))
})

t.test('a run keeps one metric per name, the same one on every lookup; a name keeps its kind', async (t) => {
  const metrics = new Metrics()
  const latency = metrics.trend('lat')
  latency.add(5)
  t.equal(metrics.trend('lat'), latency)
  t.equal(metrics.trend('lat').count, 1)
  metrics.check('ok', true)
  metrics.check('ok', false, 'one example')
  t.equal(metrics.rate('checks').count, 2)
  t.same(metrics.failures.get('ok'), ['one example'])
  t.throws(() => metrics.counter('lat'), /metric lat is a trend/)
  t.same([...metrics.all.keys()], ['lat', 'checks'])
})

t.test('options are bounded and validated', async (t) => {
  const options = parseOptions(['--scenario', 'dashboard-ws,ingest', '--users', '100', '--duration', '20s', '--profile', 'pulse'], {})
  t.same(options.scenarios, ['dashboard-ws', 'ingest'])
  t.equal(options.users, 100)
  t.equal(options.durationMs, 20_000)
  t.equal(options.url, undefined, 'no URL given: the harness uses loopback')
  t.throws(() => parseOptions(['--users', '1000000'], {}), UsageError)
  t.throws(() => parseOptions(['--duration', '2h'], {}), UsageError)
  t.throws(() => parseOptions(['--scenario', 'nope'], {}), UsageError)
  t.throws(() => parseOptions(['--url', 'ftp://x'], {}), UsageError)
  t.throws(() => parseOptions(['--url', 'http://127.0.0.1:1', '--embedded'], {}), UsageError)
  t.equal(parseOptions([], { PULSE_URL: 'http://127.0.0.1:4000/' }).url, 'http://127.0.0.1:4000')
})
