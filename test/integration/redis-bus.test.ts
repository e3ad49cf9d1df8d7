import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import type { BucketEvent } from '../../shared/ports/bus.js'
import { RedisBus } from '../../shared/adapters/redis/redis-bus.js'
import type { Bucket } from '../../shared/timeseries/bucket.js'
import { oneItemBucket } from '../helpers/items.js'
import { startRedisServer } from '../helpers/redis-server.js'

function bucket (ticker: string, resolution: Bucket['resolution'], rev: number): Bucket {
  return oneItemBucket({ ticker, resolution, start: 1_766_313_300_000 }, { ts: 1_766_313_300_000, id: 'a' }, rev, 1)
}

function change (b: Bucket): BucketEvent {
  return { kind: 'change', bucket: b, acceptedAt: 5 }
}

async function until (check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out')
    await sleep(20)
  }
}

const server = await startRedisServer(t)

async function channelsOf (env: string): Promise<string[]> {
  const admin = new Redis(server.url)
  try {
    return (await admin.pubsub('CHANNELS', `pulse:${env}:ch:*`) as string[]).sort()
  } finally {
    admin.disconnect()
  }
}

t.test('events reach only the listeners of their series; channels are reference-counted', async (t) => {
  const env = `t${randomUUID().slice(0, 8)}`
  const bus = new RedisBus({ url: server.url, env })
  t.teardown(() => bus.close())
  const a: BucketEvent[] = []
  const b: BucketEvent[] = []
  const other: BucketEvent[] = []
  const offA = await bus.subscribe('AAPL#1m', (e) => a.push(e))
  const offB = await bus.subscribe('AAPL#1m', (e) => b.push(e))
  const offOther = await bus.subscribe('MSFT#5m', (e) => other.push(e))
  t.same(await channelsOf(env), [`pulse:${env}:ch:AAPL#1m`, `pulse:${env}:ch:MSFT#5m`])
  t.equal(bus.channelCount, 2)

  await bus.publish([change(bucket('AAPL', '1m', 1)), change(bucket('AAPL', '5m', 1))])
  await until(() => a.length === 1 && b.length === 1)
  t.strictSame(a[0], change(bucket('AAPL', '1m', 1)), 'the event arrives as published')
  t.equal(other.length, 0)

  await offA()
  await offA()
  t.equal(bus.channelCount, 2, 'one listener left: still subscribed')
  await bus.publish([change(bucket('AAPL', '1m', 2))])
  await until(() => b.length === 2)
  t.equal(a.length, 1)

  await offB()
  await offOther()
  t.equal(bus.channelCount, 0)
  t.same(await channelsOf(env), [], 'unsubscribed after the last listener')

  const again: BucketEvent[] = []
  const offAgain = await bus.subscribe('AAPL#1m', (e) => again.push(e))
  await bus.publish([change(bucket('AAPL', '1m', 3))])
  await until(() => again.length === 1)
  await offAgain()
})

t.test('a restarted redis-server gets every subscription back', async (t) => {
  const own = await startRedisServer(t)
  const env = `t${randomUUID().slice(0, 8)}`
  const bus = new RedisBus({ url: own.url, env })
  t.teardown(() => bus.close())
  const got: BucketEvent[] = []
  await bus.subscribe('AAPL#1m', (e) => got.push(e))
  await bus.subscribe('MSFT#1h', (e) => got.push(e))

  await own.kill()
  await own.restart({ empty: true })
  await until(async () => {
    await bus.publish([change(bucket('AAPL', '1m', 1)), change(bucket('MSFT', '1h', 1))]).catch(() => {})
    return got.some((e) => e.bucket.ticker === 'AAPL') && got.some((e) => e.bucket.ticker === 'MSFT')
  }, 15_000)
  t.pass('events flow again on both channels')
  await bus.ping()
  const admin = new Redis(own.url)
  t.teardown(() => admin.disconnect())
  t.same((await admin.pubsub('CHANNELS', `pulse:${env}:ch:*`) as string[]).sort(), [`pulse:${env}:ch:AAPL#1m`, `pulse:${env}:ch:MSFT#1h`])
})

t.test('a listener that throws does not stop the others', async (t) => {
  const env = `t${randomUUID().slice(0, 8)}`
  const errors: unknown[] = []
  const bus = new RedisBus({ url: server.url, env, onError: (e) => errors.push(e) })
  t.teardown(() => bus.close())
  const got: BucketEvent[] = []
  await bus.subscribe('AAPL#1m', () => { throw new Error('boom') })
  await bus.subscribe('AAPL#1m', (e) => got.push(e))
  await bus.publish([change(bucket('AAPL', '1m', 1))])
  await until(() => got.length === 1)
  t.equal(errors.length, 1)
})

t.test('after its subscriber connection is killed, the bus signals a resync once every channel is subscribed again', async (t) => {
  const env = `t${randomUUID().slice(0, 8)}`
  const bus = new RedisBus({ url: server.url, env })
  t.teardown(() => bus.close())
  const admin = new Redis(server.url)
  t.teardown(() => admin.disconnect())
  const channels = [`pulse:${env}:ch:AAPL#1m`, `pulse:${env}:ch:MSFT#1h`]
  await bus.subscribe('AAPL#1m', () => {})
  await bus.subscribe('MSFT#1h', () => {})
  const subscribedAtResync: number[][] = []
  bus.onResync(() => {
    // Ask Redis at the moment of the signal: a resync that reads the hot state now must not miss a publish.
    admin.pubsub('NUMSUB', ...channels).then((reply) => {
      subscribedAtResync.push((reply as Array<string | number>).filter((_, i) => i % 2 === 1).map(Number))
    }, () => {})
  })
  await sleep(100)
  t.same(subscribedAtResync, [], 'no resync without a drop')
  await admin.client('KILL', 'TYPE', 'pubsub')
  await until(() => subscribedAtResync.length === 1, 10_000)
  t.same(subscribedAtResync[0], [1, 1], 'both channels were subscribed again when the resync was signalled')
})
