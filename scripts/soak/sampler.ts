import { ScanCommand } from '@aws-sdk/lib-dynamodb'
import { Redis } from 'ioredis'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { createDynamoClients, type DynamoClients } from '../../shared/adapters/dynamo/client.js'
import { tableName } from '../../shared/adapters/dynamo/table.js'
import { metricValue, parsePrometheus } from '../../test/helpers/prometheus.js'
import type { SoakSystem } from './topology.js'

/** One row of the soak's table: every figure at one moment. Absent figures do not apply to the mode. */
export interface Sample {
  /** Seconds since the load started. */
  at: number
  /** Per Pulse process: resident set, and V8 heap in use just after its last full collection, bytes (`/metrics`). */
  rss: Record<string, number>
  heap: Record<string, number>
  /** Per Pulse process: memory outside the V8 heap that JavaScript holds (Buffers and other ArrayBuffers), bytes. */
  external: Record<string, number>
  journalBytes?: number
  journalSegments?: number
  /** The archive's LevelDB directory, bytes. */
  archiveBytes: number
  /** Every row the table holds, expired or not (a Scan's ScannedCount). */
  archiveRows: number
  /**
   * Rows whose `ttl` has not passed (what DynamoDB itself would still hold once its TTL
   * deletion caught up), of the series that turn over within a soak (1m, 5m, 10m)…
   */
  archiveLiveRows: number
  /** …and of the others (1h–24h), which step up by a row a ticker at each of their boundaries. */
  archiveCoarseLiveRows: number
  redisUsedMemory?: number
  redisKeys?: number
  /** Keys without a TTL (`INFO keyspace`: keys − expires): the ones that could stay forever. */
  redisPersistentKeys?: number
  /** Commands Redis processed per second since the previous sample. */
  redisCommandsPerSecond?: number
  /** Batches waiting in the ingest queue (`pulse_queue_jobs{state="waiting"}`, largest any process reports). */
  queueDepth: number
  /** Milliseconds from a probe item's 202 to its bucket showing it; undefined: not seen within 60 s. */
  queueAgeMs: number | undefined
}

/** The series whose rows and keys turn over within a soak at the default retention scale. */
const TURNING_OVER = new Set(['1m', '5m', '10m'])

async function directoryBytes (dir: string): Promise<number> {
  let total = 0
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) total += await directoryBytes(path)
    else total += (await stat(path).catch(() => ({ size: 0 }))).size
  }
  return total
}

async function journalFigures (dir: string): Promise<{ bytes: number, segments: number }> {
  let bytes = 0
  let segments = 0
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    bytes += (await stat(join(dir, name)).catch(() => ({ size: 0 }))).size
    if (name.endsWith('.journal') || name.endsWith('.ndjson')) segments++
  }
  return { bytes, segments }
}

/** Reads the figures of a {@link SoakSystem}; one per soak run. */
export class Sampler {
  readonly #system: SoakSystem
  readonly #dynamo: DynamoClients
  readonly #redis: Redis | undefined
  #commands: { total: number, at: number } | undefined

  constructor (system: SoakSystem) {
    this.#system = system
    this.#dynamo = createDynamoClients({ region: 'us-east-1', endpoint: system.archiveEndpoint })
    this.#redis = system.redisUrl === undefined ? undefined : new Redis(system.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 })
  }

  get dynamo (): DynamoClients {
    return this.#dynamo
  }

  async sample (at: number, queueAgeMs: number | undefined): Promise<Sample> {
    const rss: Record<string, number> = {}
    const heap: Record<string, number> = {}
    const external: Record<string, number> = {}
    let queueDepth = 0
    for (const { name, proc } of this.#system.processes) {
      const text = await fetch(`${proc.url}/metrics`, { signal: AbortSignal.timeout(10_000) }).then(async (r) => await r.text()).catch(() => '')
      const samples = parsePrometheus(text)
      rss[name] = metricValue(samples, 'process_resident_memory_bytes') ?? NaN
      heap[name] = metricValue(samples, 'pulse_heap_live_bytes') ?? NaN
      external[name] = metricValue(samples, 'nodejs_external_memory_bytes') ?? NaN
      queueDepth = Math.max(queueDepth, metricValue(samples, 'pulse_queue_jobs', { state: 'waiting' }) ?? 0)
    }
    const sample: Sample = { at, rss, heap, external, archiveBytes: await directoryBytes(this.#system.archiveDir), ...await this.#archiveRows(), queueDepth, queueAgeMs }
    if (this.#system.dataDir !== undefined) {
      const journal = await journalFigures(join(this.#system.dataDir, 'journal'))
      sample.journalBytes = journal.bytes
      sample.journalSegments = journal.segments
    }
    if (this.#redis !== undefined) Object.assign(sample, await this.#redisFigures(this.#redis))
    return sample
  }

  async close (): Promise<void> {
    this.#dynamo.client.destroy()
    this.#redis?.disconnect()
  }

  async #archiveRows (): Promise<Pick<Sample, 'archiveRows' | 'archiveLiveRows' | 'archiveCoarseLiveRows'>> {
    const counts = { archiveRows: 0, archiveLiveRows: 0, archiveCoarseLiveRows: 0 }
    const now = Math.floor(Date.now() / 1000)
    let start: Record<string, unknown> | undefined
    do {
      const page = await this.#dynamo.doc.send(new ScanCommand({
        TableName: tableName(this.#system.env),
        ProjectionExpression: 'PK, #ttl',
        ExpressionAttributeNames: { '#ttl': 'ttl' },
        ExclusiveStartKey: start
      }))
      for (const item of page.Items ?? []) {
        counts.archiveRows++
        if (!(Number(item.ttl) > now)) continue
        if (TURNING_OVER.has(String(item.PK).slice(String(item.PK).indexOf('#') + 1))) counts.archiveLiveRows++
        else counts.archiveCoarseLiveRows++
      }
      start = page.LastEvaluatedKey
    } while (start !== undefined)
    return counts
  }

  async #redisFigures (redis: Redis): Promise<Pick<Sample, 'redisUsedMemory' | 'redisKeys' | 'redisPersistentKeys' | 'redisCommandsPerSecond'>> {
    const memory = await redis.info('memory')
    const stats = await redis.info('stats')
    const keyspace = /db0:keys=(\d+),expires=(\d+)/.exec(await redis.info('keyspace'))
    const keys = Number(keyspace?.[1] ?? 0)
    const total = Number(/total_commands_processed:(\d+)/.exec(stats)?.[1] ?? NaN)
    const now = Date.now()
    const previous = this.#commands
    this.#commands = { total, at: now }
    return {
      redisUsedMemory: Number(/used_memory:(\d+)/.exec(memory)?.[1] ?? NaN),
      redisKeys: keys,
      redisPersistentKeys: keys - Number(keyspace?.[2] ?? 0),
      // The soak's own four commands per sample are left in: a rounding error at any real rate.
      redisCommandsPerSecond: previous === undefined ? undefined : (total - previous.total) / ((now - previous.at) / 1000)
    }
  }
}
