import t from 'tap'
import { ConfigError, DEFAULT_CLUSTER_INGEST_SHARDS, loadConfig } from '../../shared/config/config.js'

const SEED = 'redis://127.0.0.1:7000'

t.test('REDIS_CLUSTER, REDIS_CLUSTER_NAT_MAP and INGEST_SHARDS', async (t) => {
  const single = loadConfig({ REDIS_URL: SEED })
  t.equal(single.redisCluster, undefined, 'a single node unless REDIS_CLUSTER is set')
  t.equal(single.ingestShards, 1, 'one ingest shard on a single node')
  const clustered = loadConfig({ REDIS_URL: SEED, REDIS_CLUSTER: '1' })
  t.same(clustered.redisCluster, {})
  t.equal(clustered.ingestShards, DEFAULT_CLUSTER_INGEST_SHARDS, 'shards over the masters by default on a cluster')
  t.equal(loadConfig({ REDIS_URL: SEED, REDIS_CLUSTER: 'true', INGEST_SHARDS: '8' }).ingestShards, 8)
  t.equal(loadConfig({ REDIS_URL: SEED, INGEST_SHARDS: '2' }).ingestShards, 2, 'a single node may shard too')
  t.same(loadConfig({ REDIS_URL: SEED, REDIS_CLUSTER: '1', REDIS_CLUSTER_NAT_MAP: '10.0.0.1:6379=203.0.113.7:7001, 10.0.0.2:6379=[2001:db8::1]:7002' }).redisCluster, {
    natMap: { '10.0.0.1:6379': { host: '203.0.113.7', port: 7001 }, '10.0.0.2:6379': { host: '2001:db8::1', port: 7002 } }
  })
})

t.test('bad cluster settings name their variable', async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ REDIS_CLUSTER: '1' }, 'REDIS_CLUSTER'],
    [{ REDIS_URL: SEED, REDIS_CLUSTER: 'on' }, 'REDIS_CLUSTER'],
    [{ REDIS_URL: `${SEED}/2`, REDIS_CLUSTER: '1' }, 'REDIS_URL'],
    [{ REDIS_URL: SEED, REDIS_CLUSTER_NAT_MAP: '10.0.0.1:6379=h:1' }, 'REDIS_CLUSTER_NAT_MAP'],
    [{ REDIS_URL: SEED, REDIS_CLUSTER: '1', REDIS_CLUSTER_NAT_MAP: '10.0.0.1=h:1' }, 'REDIS_CLUSTER_NAT_MAP'],
    [{ REDIS_URL: SEED, INGEST_SHARDS: '0' }, 'INGEST_SHARDS'],
    [{ REDIS_URL: SEED, INGEST_SHARDS: '65' }, 'INGEST_SHARDS'],
    [{ REDIS_URL: SEED, INGEST_SHARDS: 'many' }, 'INGEST_SHARDS']
  ]
  for (const [env, variable] of cases) {
    let caught: unknown
    try {
      loadConfig(env)
    } catch (err) {
      caught = err
    }
    t.ok(caught instanceof ConfigError && caught.variable === variable, `${JSON.stringify(env)} → ${variable} (${String(caught)})`)
  }
})

t.test('replica durability is refused on a Redis Cluster, where WAIT cannot reach the master of a shard', async (t) => {
  t.throws(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:7000', REDIS_CLUSTER: '1', INGEST_DURABILITY: 'replica' }), /INGEST_DURABILITY/)
})
