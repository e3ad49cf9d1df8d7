import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, FastifyPluginAsync, FastifyPluginOptions } from 'fastify'
import fp from 'fastify-plugin'
import pino, { type Logger } from 'pino'
import { DynamoArchive } from '../shared/adapters/dynamo/dynamo-archive.js'
import { EmbeddedArchive } from '../shared/adapters/dynamo/embedded-dynamo.js'
import { JournalQueue } from '../shared/adapters/journal/journal-queue.js'
import type { Config } from '../shared/config/config.js'
import { applyRetentionScale } from '../shared/timeseries/resolutions.js'
import type { TickerCatalogue } from '../shared/timeseries/ticker-catalogue.js'
import { type PulseAdapters, createAdapters } from './adapters.js'
import { type Aggregator, startAggregator } from './aggregator/aggregator.js'
import { type DemoFeed, startDemoFeed } from './aggregator/demo-feed.js'
import { admission } from './gateway/admission.js'
import { buildApp, type BuildAppOptions } from './gateway/app.js'
import { ProducerKeys } from './gateway/access/producers.js'
import drainPlugin, { type DrainState } from './gateway/plugins/drain.js'
import metricsPlugin from './gateway/plugins/metrics.js'
import { SeriesCache } from './gateway/series-cache.js'
import type { UwsEdge } from './gateway/uws/edge.js'
import { PulseMetrics } from './metrics.js'
import { buildOpsServer } from './ops-server.js'
import { readinessCheck } from './readiness.js'

/**
 * How long a cluster gateway drains by default (`DRAIN_MS`): readiness fails and new
 * requests get 503 while open streams keep flowing, long enough for a load balancer's
 * health check to take the gateway out (an ALB checks every 5–30 s with a threshold of
 * 2; Fly every few seconds) before the streams are closed and their clients reconnect.
 */
export const CLUSTER_DRAIN_MS = 10_000
/** Time the rest of a shutdown may take after the drain: the in-hand batch, the last flush, connections. */
export const SHUTDOWN_BUDGET_MS = 20_000

export interface StartOptions {
  logger?: Logger
  now?: () => number
  /** Extra gateway plugins (streaming, metrics) — see BuildAppOptions. */
  plugins?: BuildAppOptions['plugins']
  /** Listen (default) or only build the app (for `inject`). */
  listen?: boolean
  /** Drain period of a gateway on close; default `DRAIN_MS`, else {@link CLUSTER_DRAIN_MS} in cluster mode, 0 embedded. */
  drainMs?: number
}

/** A running Pulse process: whichever roles its config selects. */
export interface Pulse {
  config: Config
  adapters: PulseAdapters
  app: FastifyInstance | undefined
  /** Base URL of the gateway (or of a worker's ops listener: health and metrics), when it listens. */
  url: string | undefined
  metrics: PulseMetrics
  /** Set while closing: new requests get 503 and readiness fails. */
  drain: DrainState
  /** The drain period `close` waits before closing the gateway. */
  drainMs: number
  /** Keys accepted for ingest (generated when none was configured in embedded mode). */
  ingestKeys: string[]
  /** The demo feed, when `DEMO_FEED` runs it in this process. */
  demo: DemoFeed | undefined
  close: () => Promise<void>
}

interface ReconnectSource {
  onReconnecting: (listener: (connection?: string) => void) => void
}

function reportsReconnects (adapter: unknown): adapter is ReconnectSource {
  return typeof (adapter as Partial<ReconnectSource>).onReconnecting === 'function'
}

/** Metrics read from the adapters on scrape, and Redis reconnections counted as they happen. */
function observeAdapters (metrics: PulseMetrics, adapters: PulseAdapters): void {
  const { queue, hot, bus, archive } = adapters
  metrics.attach({ queue, archivePing: async () => await archive.ping() })
  if (archive instanceof DynamoArchive || archive instanceof EmbeddedArchive) metrics.attach({ archive: () => archive.stats })
  if (queue instanceof JournalQueue) metrics.attach({ journal: () => queue.stats })
  for (const [name, adapter] of [['hot', hot], ['bus', bus]] as const) {
    if (!reportsReconnects(adapter)) continue
    const label = (connection?: string): string => connection === undefined ? name : `${name}-${connection}`
    for (const connection of name === 'bus' ? ['pub', 'sub'] : [undefined]) metrics.redisReconnects.inc({ connection: label(connection) }, 0)
    adapter.onReconnecting((connection) => metrics.redisReconnects.inc({ connection: label(connection) }))
  }
}

/** Registers a plugin with options so its hooks apply to the whole app (not only inside a wrapper). */
function withOptions<T extends FastifyPluginOptions> (plugin: FastifyPluginAsync<T>, options: T): (app: FastifyInstance) => Promise<void> {
  return fp(async (app) => { await app.register(plugin, options) })
}

/**
 * `TICKERS` seeds only an empty registry: when the registry holds another set (an earlier
 * start, the admin API), says so, so an operator who edited `TICKERS` knows why nothing changed.
 */
function reportTickerSeed (config: Config, catalogue: TickerCatalogue, log: Logger): void {
  const active = new Set(catalogue.active)
  const notApplied = config.tickers.filter((ticker) => !active.has(ticker))
  const notListed = catalogue.active.filter((ticker) => !config.tickers.includes(ticker))
  if (notApplied.length === 0 && notListed.length === 0) return
  log.info({ active: catalogue.active.length, retired: catalogue.all.length - catalogue.active.length, notApplied: notApplied.slice(0, 20), notListed: notListed.slice(0, 20) },
    'the ticker registry was seeded before: TICKERS is not applied again; add and retire tickers with the admin API')
}

/** Starts the roles of `config`: gateway, aggregator (worker), or both. */
export async function startPulse (config: Config, options: StartOptions = {}): Promise<Pulse> {
  const log = options.logger ?? pino({ level: config.logLevel })
  const now = options.now ?? Date.now
  applyRetentionScale(config.retentionScale)
  if (config.retentionScale > 1) log.warn({ retentionScale: config.retentionScale }, 'retention divided by PULSE_TEST_RETENTION_SCALE: for tests only')
  const adapters = await createAdapters(config, log)
  const { queue, hot, archive, bus, tickers } = adapters
  reportTickerSeed(config, tickers.current(), log)
  const metrics = new PulseMetrics({ role: config.role, mode: adapters.mode })
  observeAdapters(metrics, adapters)
  const drain: DrainState = { draining: false }
  const drainMs = options.drainMs ?? config.drainMs ?? (adapters.mode === 'cluster' && config.role !== 'worker' ? CLUSTER_DRAIN_MS : 0)
  const limits = { maxItems: config.ingestBacklogMaxItems, maxBytes: config.ingestBacklogMaxBytes }
  const readiness = readinessCheck(adapters, drain, undefined, limits)
  metrics.attach({
    admission: async () => {
      await queue.refreshBacklog()
      return { ...admission(queue, limits), limits }
    }
  })

  let producers = config.ingestProducers
  if (producers.length === 0) {
    if (adapters.mode === 'cluster' && config.role !== 'worker') throw new Error('INGEST_API_KEY: required in cluster mode')
    producers = [{ name: 'generated', key: randomBytes(24).toString('base64url'), tickers: undefined, batchesPerMinute: undefined }]
    if (config.role !== 'worker') log.info(`INGEST_API_KEY was not set; this run accepts: ${producers[0]?.key ?? ''}`)
  }
  const ingestKeys = producers.map((p) => p.key)

  let aggregator: Aggregator | undefined
  let demo: DemoFeed | undefined
  if (config.role !== 'gateway') {
    aggregator = await startAggregator(adapters, config, log, now, {
      onFolded: (report, items, seconds) => {
        metrics.foldDuration.observe(seconds)
        metrics.foldedItems.inc(items)
        if (report.loaded > 0) metrics.cacheMisses.inc({ tier: 'hot' }, report.loaded)
      }
    })
    const writeBehind = aggregator.writeBehind
    metrics.attach({ writeBehind: () => writeBehind.stats, dedupe: async () => await adapters.hot.dedupeEntries(tickers.current().readable(now()), now()) })
  }
  if (config.demoFeed && config.role !== 'worker') {
    demo = startDemoFeed({
      queue,
      hot,
      archive,
      tickers: tickers.current().active,
      liveTickers: () => tickers.current().active,
      now,
      onError: (err) => log.warn({ err }, 'demo feed failed'),
      onBackfilled: (report) => log.info(report, report.filled > 0 ? 'demo history queued for tickers without history' : 'demo history not needed: the store has history')
    })
  }

  let app: FastifyInstance | undefined
  let ops: FastifyInstance | undefined
  let url: string | undefined
  let edge: UwsEdge | undefined
  let cache: SeriesCache | undefined
  if (config.role === 'worker') {
    ops = await buildOpsServer({ metrics, metricsToken: config.metricsToken, readiness, drain, logger: log })
    if (options.listen !== false) url = await ops.listen({ port: config.port, host: config.host })
    log.info(`Pulse worker (${adapters.mode} mode) started${url === undefined ? '' : `; health and metrics on ${url}`}`)
  } else {
    cache = new SeriesCache({
      hot,
      archive,
      bus,
      now,
      lingerMs: config.subscriptionLingerMs,
      maxBuckets: config.seriesCacheMaxBuckets,
      onError: (err, series) => log.warn({ err, series }, 'series cache'),
      onInvalidEvent: (problem, series) => {
        metrics.busMessagesDropped.inc()
        log.warn({ series, problem }, 'dropped an invalid bus message')
      }
    })
    const gatewayApp = app = await buildApp({ config, queue, hot, archive, bus, tickers, cache, ingestKeys: new ProducerKeys(producers), now, readiness, metrics }, {
      logger: options.logger,
      plugins: [
        withOptions(metricsPlugin, { metrics, token: config.metricsToken }),
        withOptions(drainPlugin, { drain }),
        ...(options.plugins ?? [])
      ]
    })
    metrics.attach({
      cache,
      streams: () => gatewayApp.hasDecorator('streaming') ? gatewayApp.streaming.stats().transports : {}
    })
    if (options.listen !== false && config.gatewayEngine === 'uws') {
      await app.ready()
      // Loaded only when chosen, so the default engine never loads the native module.
      const { startUwsEdge } = await import('./gateway/uws/edge.js')
      edge = await startUwsEdge(app, { port: config.port, host: config.host })
      url = edge.url
      log.info(`Pulse ${config.role} (${adapters.mode} mode, uWebSockets.js edge) listening on ${url}`)
    } else if (options.listen !== false) {
      url = await app.listen({ port: config.port, host: config.host })
      log.info(`Pulse ${config.role} (${adapters.mode} mode) listening on ${url}`)
    } else {
      await app.ready()
    }
  }

  let closed: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closed ??= (async () => {
      // New requests (new streams included) get 503 and readiness fails from here on.
      drain.draining = true
      demo?.stop()
      if (app !== undefined) {
        if (drainMs > 0 && url !== undefined) {
          log.info({ drainMs }, 'draining: readiness fails and new requests get 503; open streams keep flowing until the load balancer has noticed')
          await sleep(drainMs)
        }
        // Only now are streams closed: their clients reconnect, and the load balancer, which
        // has seen readiness fail, sends them to another gateway.
        if (app.hasDecorator('streaming')) app.streaming.shutdown()
        await edge?.close()
        await app.close()
      }
      await aggregator?.stop()
      await ops?.close()
      await cache?.close()
      await adapters.close()
    })()
    await closed
  }
  return { config, adapters, app, url, metrics, drain, drainMs, ingestKeys, demo, close }
}
