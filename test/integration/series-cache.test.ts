import t from 'tap'
import { createDynamoClients } from '../../shared/adapters/dynamo/client.js'
import { DynamoArchive } from '../../shared/adapters/dynamo/dynamo-archive.js'
import { MemoryBus } from '../../shared/adapters/memory/memory-bus.js'
import { MemoryHotState } from '../../shared/adapters/memory/memory-hot-state.js'
import { bucketStart, labelFor, type ScoredItem } from '../../shared/timeseries/index.js'
import { SeriesCache } from '../../services/gateway/series-cache.js'
import { freePort } from '../helpers/free-port.js'

t.test('with the archive unreachable, history serves what the hot state holds and retries the archive', async (t) => {
  const port = await freePort()
  const { doc, client } = createDynamoClients({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}` })
  t.teardown(() => client.destroy())
  const archive = new DynamoArchive({ client: doc, tableName: 'nowhere', maxAttempts: 1 })
  const hot = new MemoryHotState({ dedupeWindowMs: 86_400_000 })
  const now = Date.now()
  const item: ScoredItem = { id: 'x', ticker: 'AAPL', ts: now, score: 0.4, label: labelFor(0.4), source: 'tiingo' }
  const first = await hot.fold('AAPL', [item], { now })
  if (first.kind === 'needs-load') await hot.seed(first.refs, [])
  await hot.fold('AAPL', [item], { now })
  const errors: unknown[] = []
  const cache = new SeriesCache({ hot, archive, bus: new MemoryBus(), now: () => now, onError: (err) => errors.push(err) })

  const view = await cache.read('AAPL', '1m')
  t.equal(view.buckets.length, 1, 'the recent bucket from the hot state is served')
  t.equal(view.buckets[0]?.start, bucketStart(now, '1m'))
  t.equal(view.hit, false)
  t.ok(errors.length > 0, 'the archive failure is reported')
  await cache.read('AAPL', '1m')
  t.equal(cache.loads, 2, 'an incomplete load is retried on the next read')
  await cache.close()
})
