import t from 'tap'
import { startDynaliteProcess } from '../helpers/processes.js'
import { eventually, startTestPulse } from '../helpers/pulse.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { sharedDynalite, sharedRedisServer, uniqueEnv } from '../helpers/shared-services.js'

t.test('cluster: a stopped redis-server makes /readyz 503 naming it, then ready again', async (t) => {
  // Its own Redis: the test stops it.
  const redis = await startRedisServer(t)
  const env = { REDIS_URL: redis.url, DYNAMODB_ENDPOINT: (await sharedDynalite()).endpoint, PULSE_ENV: uniqueEnv('r') }
  const gateway = await startTestPulse(t, { ...env, ROLE: 'gateway' }, { drainMs: 0 })
  const worker = await startTestPulse(t, { ...env, ROLE: 'worker' })
  for (const p of [gateway, worker]) {
    const ready = await p.get('/readyz')
    t.equal(ready.status, 200)
    t.same(ready.body, { status: 'ready', checks: { hot_state: 'ok', queue: 'ok', archive: 'ok', bus: 'ok' } })
  }

  await redis.kill()
  for (const [name, p] of [['gateway', gateway], ['worker', worker]] as const) {
    const began = Date.now()
    const res = await p.get('/readyz')
    t.equal(res.status, 503, `${name}: 503 while Redis is down`)
    t.equal(res.body.status, 'unavailable')
    for (const check of ['hot_state', 'queue', 'bus']) t.not(res.body.checks[check], 'ok', `${name}: ${check} named (${String(res.body.checks[check])})`)
    t.equal(res.body.checks.archive, 'ok', `${name}: DynamoDB still ok`)
    t.ok(Date.now() - began < 5000, `${name}: answered within the check timeout`)
    t.equal((await p.get('/healthz')).status, 200, `${name}: still alive`)
  }

  await redis.restart()
  for (const p of [gateway, worker]) {
    await eventually(async () => (await p.get('/readyz')).status === 200 ? true : undefined, 15_000, 'ready again')
  }
})

t.test('embedded: /readyz is 200 with every check named', async (t) => {
  const p = await startTestPulse(t)
  const res = await p.get('/readyz')
  t.equal(res.status, 200)
  t.same(Object.keys(res.body.checks).sort(), ['archive', 'bus', 'hot_state', 'queue'])
})

t.test('cluster: a stopped DynamoDB leaves gateways and workers ready, archive degraded', async (t) => {
  const redis = await sharedRedisServer()
  // Its own dynalite: the test stops it.
  const dynalite = await startDynaliteProcess(t)
  const env = { REDIS_URL: redis.url, DYNAMODB_ENDPOINT: dynalite.endpoint, PULSE_ENV: uniqueEnv('r') }
  const gateway = await startTestPulse(t, { ...env, ROLE: 'gateway' }, { drainMs: 0 })
  const worker = await startTestPulse(t, { ...env, ROLE: 'worker' })
  const pid = dynalite.pid() as number
  process.kill(pid, 'SIGSTOP')
  t.teardown(() => { try { process.kill(pid, 'SIGCONT') } catch {} })
  for (const [name, p] of [['gateway', gateway], ['worker', worker]] as const) {
    const res = await p.get('/readyz')
    t.equal(res.status, 200, `${name}: still ready while DynamoDB does not answer`)
    t.same(res.body, { status: 'ready', checks: { hot_state: 'ok', queue: 'ok', archive: 'degraded', bus: 'ok' } }, `${name}: archive degraded`)
    const metrics = await p.get('/metrics')
    t.match(metrics.body, /^pulse_archive_up 0$/m, `${name}: pulse_archive_up is 0`)
  }
  process.kill(pid, 'SIGCONT')
  for (const p of [gateway, worker]) {
    const res = await eventually(async () => {
      const r = await p.get('/readyz')
      return r.body.checks?.archive === 'ok' ? r : undefined
    }, 15_000, 'archive ok again')
    t.equal(res.status, 200)
    t.match((await p.get('/metrics')).body, /^pulse_archive_up 1$/m)
  }
})
