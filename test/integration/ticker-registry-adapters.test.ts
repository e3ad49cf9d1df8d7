import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import t from 'tap'
import { FileTickerRegistry } from '../../shared/adapters/journal/file-ticker-registry.js'
import { RedisKeys } from '../../shared/adapters/redis/keys.js'
import { RedisTickerRegistry } from '../../shared/adapters/redis/redis-ticker-registry.js'
import type { TickerRegistry } from '../../shared/ports/ticker-registry.js'
import { eventually } from '../helpers/pulse.js'
import { sharedRedisServer, uniqueEnv } from '../helpers/shared-services.js'

/**
 * The ticker registry's contract, run against both adapters: what seeding, adding and
 * retiring do, and that a reopened registry (a restart) holds what was changed.
 */
interface AdapterUnderTest {
  name: string
  /** A fresh, empty store; `open` opens a registry on it (as a process start does). */
  fresh: () => Promise<{ open: (seed: readonly string[], now: number) => Promise<TickerRegistry> }>
}

const redisUrl = (await sharedRedisServer()).url

const adapters: AdapterUnderTest[] = [
  {
    name: 'file (embedded)',
    fresh: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'pulse-registry-'))
      t.teardown(async () => await rm(dir, { recursive: true, force: true }))
      return { open: async (seed, now) => await FileTickerRegistry.open({ dir, seed, now }) }
    }
  },
  {
    name: 'redis (cluster)',
    fresh: async () => {
      const env = uniqueEnv('r')
      return { open: async (seed, now) => await RedisTickerRegistry.open({ url: redisUrl, env, seed, now, pollMs: 100 }) }
    }
  }
]

for (const adapter of adapters) {
  t.test(`${adapter.name}: the ticker registry contract`, async (t) => {
    const store = await adapter.fresh()
    const opened: TickerRegistry[] = []
    const open = async (seed: readonly string[], now: number): Promise<TickerRegistry> => {
      const registry = await store.open(seed, now)
      opened.push(registry)
      return registry
    }
    t.teardown(async () => { await Promise.all(opened.map(async (r) => await r.close())) })

    const registry = await open(['AAPL', 'MSFT', 'AAPL'], 1000)
    t.same(registry.current().active, ['AAPL', 'MSFT'], 'the first open seeds the set, in order, once each')

    const heard: string[][] = []
    registry.onChange((catalogue) => heard.push([...catalogue.active]))

    const added = await registry.add('NVDA', 2000)
    t.same(added, { entry: { ticker: 'NVDA', state: 'active', seq: 2, changedAt: 2000 }, changed: true }, 'a new ticker is added at the end')
    t.same(registry.current().active, ['AAPL', 'MSFT', 'NVDA'], 'and known here at once')
    t.same(heard.at(-1), ['AAPL', 'MSFT', 'NVDA'], 'listeners hear of it')

    const again = await registry.add('NVDA', 3000)
    t.same(again, { entry: { ticker: 'NVDA', state: 'active', seq: 2, changedAt: 2000 }, changed: false }, 'adding twice changes nothing')

    const retired = await registry.retire('MSFT', 4000)
    t.same(retired, { entry: { ticker: 'MSFT', state: 'retired', seq: 1, changedAt: 4000 }, changed: true })
    t.same(registry.current().active, ['AAPL', 'NVDA'], 'a retired ticker leaves the active set')
    t.same(registry.current().all, ['AAPL', 'MSFT', 'NVDA'], 'but stays in the registry')
    t.ok(registry.current().isRetired('MSFT'))
    t.ok(registry.current().isReadable('MSFT', 5000), 'its history is readable')
    t.same((await registry.retire('MSFT', 5000))?.changed, false, 'retiring twice changes nothing')
    t.equal(await registry.retire('TSLA', 5000), undefined, 'retiring an unknown ticker: undefined')

    const reopened = await open(['JPM'], 6000)
    t.same(reopened.current().entries, registry.current().entries, 'a later open (a restart) keeps what was changed, and ignores its seed')

    const back = await registry.add('MSFT', 7000)
    t.same(back, { entry: { ticker: 'MSFT', state: 'active', seq: 1, changedAt: 7000 }, changed: true }, 're-adding a retired ticker makes it active in its old place')
    t.same(registry.current().active, ['AAPL', 'MSFT', 'NVDA'])
  })
}

t.test('redis: every process learns of a change within its poll, and a registry Redis lost is written back', async (t) => {
  const env = uniqueEnv('r')
  const a = await RedisTickerRegistry.open({ url: redisUrl, env, seed: ['AAPL'], now: 1000, pollMs: 100 })
  const b = await RedisTickerRegistry.open({ url: redisUrl, env, seed: ['AAPL'], now: 1000, pollMs: 100 })
  t.teardown(async () => { await a.close(); await b.close() })
  const heard: string[][] = []
  b.onChange((catalogue) => heard.push([...catalogue.active]))

  await a.add('NVDA', 2000)
  await eventually(() => b.current().isActive('NVDA') ? true : undefined, 5000, 'b learns of the addition')
  t.same(heard.at(-1), ['AAPL', 'NVDA'], 'b’s listeners hear of it')
  await a.retire('AAPL', 3000)
  await eventually(() => b.current().isRetired('AAPL') ? true : undefined, 5000, 'b learns of the retirement')

  // Redis restarted empty: the next poll writes back what the process knew, not its seed.
  const redis = new Redis(redisUrl)
  t.teardown(() => redis.quit())
  const keys = new RedisKeys(env)
  await redis.del(keys.tickerRegistry(), keys.tickerRegistryChanges())
  await eventually(async () => await redis.exists(keys.tickerRegistry()) === 1 ? true : undefined, 5000, 'the registry is written back')
  const c = await RedisTickerRegistry.open({ url: redisUrl, env, seed: ['TSLA'], now: 4000 })
  t.teardown(async () => await c.close())
  t.same(c.current().active, ['NVDA'], 'the written-back registry holds the changes')
  t.ok(c.current().isRetired('AAPL'))
})
