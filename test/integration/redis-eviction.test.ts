import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import t from 'tap'
import { startDynaliteProcess, startPulseProcess } from '../helpers/processes.js'
import { startTestPulse } from '../helpers/pulse.js'
import { startRedisServer } from '../helpers/redis-server.js'

t.setTimeout(180_000)

t.test('cluster: a Redis that may evict keys stops gateways and workers at start; noeviction or the override starts them', async (t) => {
  const redis = await startRedisServer(t)
  const dynalite = await startDynaliteProcess(t)
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  await admin.config('SET', 'maxmemory-policy', 'volatile-lru')
  const env = { REDIS_URL: redis.url, DYNAMODB_ENDPOINT: dynalite.endpoint, PULSE_ENV: `e${randomBytes(3).toString('hex')}` }

  for (const role of ['gateway', 'worker'] as const) {
    await t.rejects(startTestPulse(t, { ...env, ROLE: role }, { drainMs: 0 }), /maxmemory-policy volatile-lru; Pulse needs noeviction/, `${role}: refused in process`)
    const started = startPulseProcess(t, { role, env })
    await t.rejects(started, /Pulse could not start: Redis 127\.0\.0\.1:\d+ runs maxmemory-policy volatile-lru; Pulse needs noeviction.*evict dirty buckets/, `${role}: the process exits with one fatal line that says what to do`)
  }

  const skipped = await startTestPulse(t, { ...env, ROLE: 'gateway', REDIS_EVICTION_CHECK: 'skip' }, { drainMs: 0 })
  t.equal((await skipped.get('/healthz')).status, 200, 'REDIS_EVICTION_CHECK=skip starts it (a managed service that hides CONFIG)')

  await admin.config('SET', 'maxmemory-policy', 'noeviction')
  for (const role of ['gateway', 'worker'] as const) {
    const p = await startTestPulse(t, { ...env, ROLE: role }, { drainMs: 0 })
    t.equal((await p.get('/healthz')).status, 200, `${role}: starts on noeviction`)
  }
})

t.test('cluster: a Redis that refuses CONFIG stops the start with a message naming the override', async (t) => {
  const redis = await startRedisServer(t)
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  // ACL: a user that may do everything but CONFIG, as managed services set it up.
  await admin.call('ACL', 'SETUSER', 'default', 'on', 'nopass', '~*', '&*', '+@all', '-config')
  const dynalite = await startDynaliteProcess(t)
  const env = { REDIS_URL: redis.url, DYNAMODB_ENDPOINT: dynalite.endpoint, PULSE_ENV: `e${randomBytes(3).toString('hex')}` }
  await t.rejects(startTestPulse(t, { ...env, ROLE: 'worker' }), /could not read maxmemory-policy.*REDIS_EVICTION_CHECK=skip/)
  const p = await startTestPulse(t, { ...env, ROLE: 'worker', REDIS_EVICTION_CHECK: 'skip' })
  t.equal((await p.get('/healthz')).status, 200, 'the override starts it')
})
