import { constants as perfConstants, type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks'
import { getHeapStatistics } from 'node:v8'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { QueueCounts } from '../shared/ports/ingest-queue.js'

/** A streaming transport, the `transport` label. */
export type Transport = 'ws' | 'sse'

/** What one connection reports as it writes to its socket (see `ConnectionActor`). */
export interface ConnectionObserver {
  /** Bucket events written in one flush; `acceptedAt` (epoch ms) of those that carry one. */
  sent: (events: number, acceptedAt: readonly number[], now: number) => void
  /** A pending state of a bucket was replaced by a newer one before it was written. */
  coalesced: () => void
}

/** Live state the metrics read on every scrape. Each source is optional: a role has only some. */
export interface MetricSources {
  queue?: { counts: () => Promise<QueueCounts> }
  /** `SeriesCache` counters. */
  cache?: { hits: number, misses: number, loads: number, resyncs: number, resynced: number, bucketCount: number, subscriptions: number }
  /** Connections and subscriptions per transport (`ChannelHub.stats().transports`). */
  streams?: () => Partial<Record<Transport, { connections: number, subscriptions: number }>>
  /** `DynamoArchive.stats`. */
  archive?: () => { writes: number, writeCalls: number, retries: number, failedPuts: number, superseded: number, rejected: number, expired?: number }
  /** Pings the archive (DynamoDB); its outage degrades a process without making it unready. */
  archivePing?: () => Promise<void>
  /** Item fingerprints in the dedupe window (`HotState.dedupeEntries`). */
  dedupe?: () => Promise<number>
  /** `JournalQueue.stats` (embedded mode). */
  journal?: () => { segments: number, bytes: number, checkpointSeq: number }
  /** Admission control: the ingest backlog read afresh, and whether ingest admits batches. */
  admission?: () => Promise<{ admitting: boolean, backlog: { items: number, bytes: number }, limits: { maxItems: number, maxBytes: number } }>
  /** `WriteBehind.stats`. */
  writeBehind?: () => { bucketsWritten: number, bucketsParked: number, flushes: number, failedRounds: number, backlog: number, stalledSteps: number }
}

/** Seconds from acceptance to a client socket: the SPEC target is p99 < 250 ms. */
const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10]
const FOLD_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
/** A scrape must not hang on a stalled queue backend: the last counts stay until it answers. */
const QUEUE_COUNTS_TIMEOUT_MS = 1000
/** How long one backlog reading serves the admission gauges (the three of one scrape). */
const ADMISSION_READ_REUSE_MS = 500
/** Likewise for the archive ping behind `pulse_archive_up`. */
const ARCHIVE_PING_TIMEOUT_MS = 1000

async function within<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error('timeout')), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

/** Sets a counter that mirrors a running total kept elsewhere (read on scrape). */
/** The V8 heap in use just after the last full collection of this process; undefined before the first. */
let liveHeapBytes: number | undefined
let fullCollections: PerformanceObserver | undefined

/**
 * Starts (once per process) noting the heap in use after each full (mark-sweep-compact)
 * collection: what the process keeps alive, free of the garbage that the heap-in-use gauge
 * swings with (a worker's goes 50 → 200 MB between collections), so a leak shows as a rise.
 */
function watchFullCollections (): void {
  if (fullCollections !== undefined) return
  fullCollections = new PerformanceObserver((list) => {
    const full = list.getEntries().some((entry) => ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail)?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR)
    if (full) liveHeapBytes = getHeapStatistics().used_heap_size
  })
  fullCollections.observe({ entryTypes: ['gc'] })
}

function mirror<T extends string> (counter: Counter<T>, value: number, labels?: Record<T, string>): void {
  if (labels === undefined) {
    counter.reset()
    counter.inc(value)
  } else {
    counter.remove(labels)
    counter.inc(labels, value)
  }
}

/**
 * Every metric of a Pulse process, defined once, on a registry of its own (so several
 * Pulses in one test process do not collide). Counters the code increments are fields;
 * the rest is read from {@link MetricSources} on each scrape. The names and meanings are
 * listed in docs/operations.md ("Metrics").
 */
export class PulseMetrics {
  readonly registry = new Registry()
  readonly #sources: MetricSources = {}
  /** Metrics read from the sources on scrape; held only so they are visibly owned here. */
  readonly #scraped: object[] = []

  readonly itemsAccepted = new Counter({ name: 'pulse_items_accepted_total', help: 'Items accepted by POST /api/v2/items (202), duplicates included', registers: [this.registry] })
  readonly itemsRejected = new Counter({ name: 'pulse_items_rejected_total', help: 'Items in rejected ingest requests, by error code (an unreadable body counts as one)', labelNames: ['code'] as const, registers: [this.registry] })
  readonly foldDuration = new Histogram({ name: 'pulse_fold_duration_seconds', help: 'Time to fold one ingest batch into the hot state (each fold publishes its changes)', buckets: FOLD_BUCKETS, registers: [this.registry] })
  readonly foldedItems = new Counter({ name: 'pulse_folded_items_total', help: 'Items folded by this worker (duplicates included)', registers: [this.registry] })
  readonly latency = new Histogram({ name: 'pulse_event_latency_seconds', help: 'End-to-end latency: item accepted by a gateway to its bucket event written to a client socket', labelNames: ['transport'] as const, buckets: LATENCY_BUCKETS, registers: [this.registry] })
  readonly eventsSent = new Counter({ name: 'pulse_events_sent_total', help: 'Events written to client sockets (bucket events and heartbeats)', labelNames: ['transport'] as const, registers: [this.registry] })
  readonly eventsCoalesced = new Counter({ name: 'pulse_events_coalesced_total', help: 'Bucket states a connection held back under backpressure and replaced by a newer state before writing', labelNames: ['transport'] as const, registers: [this.registry] })
  readonly channelCoalesced = new Counter({ name: 'pulse_channel_events_coalesced_total', help: 'Bucket states replaced by a newer state while waiting for their trailing send (the per-bucket rule; once per series, not per client)', registers: [this.registry] })
  readonly busMessagesDropped = new Counter({ name: 'pulse_bus_messages_dropped_total', help: 'Bus messages a gateway dropped because they failed validation (never sent to clients)', registers: [this.registry] })
  readonly redisReconnects = new Counter({ name: 'pulse_redis_reconnects_total', help: 'ioredis reconnection attempts, by connection', labelNames: ['connection'] as const, registers: [this.registry] })
  readonly cacheMisses: Counter<'tier'>

  constructor (labels: { role: string, mode: string }) {
    const sources = this.#sources
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    const info = new Gauge({ name: 'pulse_info', help: 'Role and mode of this process', labelNames: ['role', 'mode'] as const, registers })
    info.set(labels, 1)
    watchFullCollections()
    this.#scraped.push(new Gauge({
      name: 'pulse_heap_live_bytes',
      help: 'V8 heap in use just after the last full garbage collection: what the process keeps alive (a leak raises it; nodejs_heap_size_used_bytes also swings with garbage)',
      registers,
      collect () {
        if (liveHeapBytes !== undefined) this.set(liveHeapBytes)
      }
    }))
    this.#scraped.push(new Gauge({
      name: 'pulse_queue_jobs',
      help: 'Ingest batches in the queue, by state (waiting includes delayed retries)',
      labelNames: ['state'] as const,
      registers,
      async collect () {
        if (sources.queue === undefined) return
        const counts = await within(sources.queue.counts(), QUEUE_COUNTS_TIMEOUT_MS).catch(() => undefined)
        if (counts === undefined) return
        for (const state of ['waiting', 'active', 'failed'] as const) this.set({ state }, counts[state])
      }
    }))
    type AdmissionReading = Awaited<ReturnType<NonNullable<MetricSources['admission']>>> | undefined
    let admissionRead: { at: number, reading: Promise<AdmissionReading> } | undefined
    // One read serves the three admission gauges of a scrape.
    const readAdmission = async (): Promise<AdmissionReading> => {
      if (sources.admission === undefined) return undefined
      if (admissionRead === undefined || Date.now() - admissionRead.at > ADMISSION_READ_REUSE_MS) {
        admissionRead = { at: Date.now(), reading: within(sources.admission(), QUEUE_COUNTS_TIMEOUT_MS).catch(() => undefined) }
      }
      return await admissionRead.reading
    }
    this.#scraped.push(new Gauge({
      name: 'pulse_ingest_backlog',
      help: 'Accepted ingest items not yet folded, over every gateway of the queue, by unit (items, bytes of queued batches)',
      labelNames: ['unit'] as const,
      registers,
      async collect () {
        const state = await readAdmission()
        if (state === undefined) return
        this.set({ unit: 'items' }, state.backlog.items)
        this.set({ unit: 'bytes' }, state.backlog.bytes)
      }
    }))
    this.#scraped.push(new Gauge({
      name: 'pulse_ingest_backlog_limit',
      help: 'The backlog past which ingest answers 503 PULSE_ERR_BACKLOG_FULL (INGEST_BACKLOG_MAX_ITEMS, INGEST_BACKLOG_MAX_MB), by unit',
      labelNames: ['unit'] as const,
      registers,
      async collect () {
        const state = await readAdmission()
        if (state === undefined) return
        this.set({ unit: 'items' }, state.limits.maxItems)
        this.set({ unit: 'bytes' }, state.limits.maxBytes)
      }
    }))
    this.#scraped.push(new Gauge({
      name: 'pulse_ingest_admitting',
      help: 'Whether ingest admits batches: 1 yes, 0 refusing with 503 PULSE_ERR_BACKLOG_FULL because the backlog is past its limit',
      registers,
      async collect () {
        const state = await readAdmission()
        if (state !== undefined) this.set(state.admitting ? 1 : 0)
      }
    }))
    this.#scraped.push(new Gauge({
      name: 'pulse_dedupe_entries',
      help: 'Item fingerprints the hot state keeps for dedupe (all dedupe slices); memory is this times the bytes per entry in docs/architecture.md',
      registers,
      async collect () {
        if (sources.dedupe === undefined) return
        const entries = await within(sources.dedupe(), QUEUE_COUNTS_TIMEOUT_MS).catch(() => undefined)
        if (entries !== undefined) this.set(entries)
      }
    }))
    this.#scraped.push(new Gauge({
      name: 'pulse_connections',
      help: 'Open streaming connections, by transport',
      labelNames: ['transport'] as const,
      registers,
      collect () {
        for (const [transport, s] of Object.entries(sources.streams?.() ?? {})) this.set({ transport }, s.connections)
      }
    }))
    this.#scraped.push(new Gauge({
      name: 'pulse_subscriptions',
      help: 'Series subscriptions held by streaming clients, by transport',
      labelNames: ['transport'] as const,
      registers,
      collect () {
        for (const [transport, s] of Object.entries(sources.streams?.() ?? {})) this.set({ transport }, s.subscriptions)
      }
    }))
    this.#scraped.push(new Counter({
      name: 'pulse_cache_hits_total',
      help: 'History reads answered from memory, by tier (l1: the gateway series cache)',
      labelNames: ['tier'] as const,
      registers,
      collect () { if (sources.cache !== undefined) mirror(this, sources.cache.hits, { tier: 'l1' }) }
    }))
    this.cacheMisses = new Counter({
      name: 'pulse_cache_misses_total',
      help: 'Cache misses, by tier (l1: series reads that loaded from the stores; hot: buckets a fold loaded from the archive)',
      labelNames: ['tier'] as const,
      registers,
      collect () { if (sources.cache !== undefined) mirror(this, sources.cache.misses, { tier: 'l1' }) }
    })
    this.#scraped.push(new Gauge({
      name: 'pulse_archive_up',
      help: 'Whether the archive (DynamoDB) answered a ping on this scrape: 1 up, 0 degraded (readiness does not depend on it)',
      registers,
      async collect () {
        if (sources.archivePing === undefined) return
        this.set(await within(sources.archivePing(), ARCHIVE_PING_TIMEOUT_MS).then(() => 1, () => 0))
      }
    }))
    this.#mirrored('pulse_cache_loads_total', 'Series windows the L1 cache loaded from the hot state and the archive (concurrent misses load once)', () => sources.cache?.loads)
    this.#mirrored('pulse_bus_resyncs_total', 'Times a gateway reloaded its watched series from the hot state after its bus connection came back', () => sources.cache?.resyncs)
    this.#mirrored('pulse_bus_resynced_buckets_total', 'Bucket states a resync found that the bus had lost, sent to clients', () => sources.cache?.resynced)
    this.#scraped.push(new Gauge({
      name: 'pulse_cache_buckets',
      help: 'Buckets held by the gateway series cache (bounded by SERIES_CACHE_MAX_BUCKETS)',
      registers,
      collect () { if (sources.cache !== undefined) this.set(sources.cache.bucketCount) }
    }))
    this.#scraped.push(new Gauge({
      name: 'pulse_bus_subscriptions',
      help: 'Series this gateway is subscribed to on the bus',
      registers,
      collect () { if (sources.cache !== undefined) this.set(sources.cache.subscriptions) }
    }))
    this.#mirrored('pulse_dynamodb_items_written_total', 'Bucket items written to DynamoDB', () => sources.archive?.().writes)
    this.#mirrored('pulse_dynamodb_write_calls_total', 'Conditional PutItem calls', () => sources.archive?.().writeCalls)
    this.#mirrored('pulse_dynamodb_retries_total', 'DynamoDB batch read retries for unprocessed keys', () => sources.archive?.().retries)
    this.#mirrored('pulse_dynamodb_failed_puts_total', 'Archive writes that stopped because DynamoDB did not answer (the buckets stay dirty)', () => sources.archive?.().failedPuts)
    this.#mirrored('pulse_dynamodb_superseded_writes_total', 'Bucket writes refused because the table already held that rev or a newer one (another flusher was first)', () => sources.archive?.().superseded)
    this.#mirrored('pulse_dynamodb_rejected_writes_total', 'Bucket writes DynamoDB refused for the item itself (e.g. over the item size limit)', () => sources.archive?.().rejected)
    this.#mirrored('pulse_archive_expired_rows_total', 'Rows the embedded archive deleted because their ttl had passed (dynalite has no TTL of its own)', () => sources.archive?.().expired)
    this.#mirrored('pulse_write_behind_parked_total', 'Times a bucket the archive refused was parked to be retried later, so the others keep flowing', () => sources.writeBehind?.().bucketsParked)
    this.#mirrored('pulse_write_behind_flushes_total', 'Write-behind flushes', () => sources.writeBehind?.().flushes)
    this.#mirrored('pulse_write_behind_failed_flushes_total', 'Write-behind flushes that stopped on an error', () => sources.writeBehind?.().failedRounds)
    this.#mirrored('pulse_write_behind_stalled_calls_total', 'Calls to Redis or the archive the write-behind stopped waiting for after the flush lease (the flush failed and the next one started)', () => sources.writeBehind?.().stalledSteps)
    this.#scraped.push(new Gauge({
      name: 'pulse_journal_bytes',
      help: 'Bytes of the embedded journal on disk: batches not yet durable in the archive, and the open segment',
      registers,
      collect () {
        const stats = sources.journal?.()
        if (stats !== undefined) this.set(stats.bytes)
      }
    }))
    this.#scraped.push(new Gauge({
      name: 'pulse_journal_segments',
      help: 'Segment files of the embedded journal on disk',
      registers,
      collect () {
        const stats = sources.journal?.()
        if (stats !== undefined) this.set(stats.segments)
      }
    }))
    this.#scraped.push(new Gauge({
      name: 'pulse_write_behind_backlog',
      help: 'Dirty buckets not yet written to DynamoDB after the last flush',
      registers,
      collect () {
        const stats = sources.writeBehind?.()
        if (stats !== undefined) this.set(stats.backlog)
      }
    }))
  }

  /** Adds (or replaces) the live sources read on scrape. */
  attach (sources: MetricSources): void {
    Object.assign(this.#sources, sources)
  }

  /** The observer of one streaming connection. */
  connectionObserver (transport: Transport): ConnectionObserver {
    const sent = this.eventsSent.labels({ transport })
    const coalesced = this.eventsCoalesced.labels({ transport })
    // Shown at 0 from the first connection on, rather than missing until a slow client appears.
    coalesced.inc(0)
    const latency = this.latency.labels({ transport })
    return {
      sent (events, acceptedAt, now) {
        sent.inc(events)
        for (const at of acceptedAt) latency.observe(Math.max(0, now - at) / 1000)
      },
      coalesced () { coalesced.inc() }
    }
  }

  /** Prometheus text exposition of every metric. */
  async text (): Promise<string> {
    return await this.registry.metrics()
  }

  #mirrored (name: string, help: string, read: () => number | undefined): void {
    this.#scraped.push(new Counter({
      name,
      help,
      registers: [this.registry],
      collect () {
        const value = read()
        if (value !== undefined) mirror(this, value)
      }
    }))
  }
}
