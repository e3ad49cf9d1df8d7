import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import pino, { type Logger } from 'pino'
import type { Config } from '../shared/config/config.js'
import { type PulseAdapters, createAdapters } from './adapters.js'
import { type Aggregator, startAggregator } from './aggregator/aggregator.js'
import { startDemoFeed } from './aggregator/demo-feed.js'
import { buildApp, type BuildAppOptions } from './gateway/app.js'
import type { ReadinessReport } from './gateway/context.js'
import { SecretSet } from './gateway/plugins/auth.js'
import { SeriesCache } from './gateway/series-cache.js'

export interface StartOptions {
  logger?: Logger
  now?: () => number
  /** Extra gateway plugins (streaming, metrics) — see BuildAppOptions. */
  plugins?: BuildAppOptions['plugins']
  /** Listen (default) or only build the app (for `inject`). */
  listen?: boolean
}

/** A running Pulse process: whichever roles its config selects. */
export interface Pulse {
  config: Config
  adapters: PulseAdapters
  app: FastifyInstance | undefined
  /** Base URL of the gateway, when it listens. */
  url: string | undefined
  /** Keys accepted for ingest (generated when none was configured in embedded mode). */
  ingestKeys: string[]
  close: () => Promise<void>
}

async function withTimeout (check: Promise<unknown>, ms: number): Promise<'ok' | string> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([check, new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms) })])
    return 'ok'
  } catch (err) {
    return (err as Error).message
  } finally {
    clearTimeout(timer)
  }
}

/** Starts the roles of `config`: gateway, aggregator (worker), or both. */
export async function startPulse (config: Config, options: StartOptions = {}): Promise<Pulse> {
  const log = options.logger ?? pino({ level: config.logLevel })
  const now = options.now ?? Date.now
  const adapters = await createAdapters(config, log)
  const { queue, hot, archive, bus } = adapters

  let ingestKeys = config.ingestApiKeys
  if (ingestKeys.length === 0) {
    if (adapters.mode === 'cluster' && config.role !== 'worker') throw new Error('INGEST_API_KEY: required in cluster mode')
    ingestKeys = [randomBytes(24).toString('base64url')]
    if (config.role !== 'worker') log.info(`INGEST_API_KEY was not set; this run accepts: ${ingestKeys[0] as string}`)
  }

  let aggregator: Aggregator | undefined
  let demo: { stop: () => void } | undefined
  if (config.role !== 'gateway') aggregator = await startAggregator(adapters, config, log, now)
  if (config.demoFeed && config.role !== 'worker') {
    demo = startDemoFeed({ queue, tickers: config.tickers, now, onError: (err) => log.warn({ err }, 'demo feed enqueue failed') })
  }

  if (config.role === 'worker') log.info(`Pulse worker (${adapters.mode} mode) started`)

  let app: FastifyInstance | undefined
  let url: string | undefined
  let cache: SeriesCache | undefined
  if (config.role !== 'worker') {
    cache = new SeriesCache({ hot, archive, bus, now, onError: (err, series) => log.warn({ err, series }, 'watcher failed') })
    const readiness = async (): Promise<ReadinessReport> => {
      const [h, q, a, b] = await Promise.all([hot.ping(), queue.ping(), archive.ping(), bus.ping()].map(async (p) => await withTimeout(p, 2000)))
      return { hot_state: h as string, queue: q as string, archive: a as string, bus: b as string }
    }
    app = await buildApp({ config, queue, hot, archive, bus, cache, ingestKeys: new SecretSet(ingestKeys), now, readiness }, {
      logger: options.logger,
      plugins: options.plugins
    })
    if (options.listen !== false) {
      url = await app.listen({ port: config.port, host: config.host })
      log.info(`Pulse ${config.role} (${adapters.mode} mode) listening on ${url}`)
    } else {
      await app.ready()
    }
  }

  let closed: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closed ??= (async () => {
      demo?.stop()
      await app?.close()
      await aggregator?.stop()
      await cache?.close()
      await adapters.close()
    })()
    await closed
  }
  return { config, adapters, app, url, ingestKeys, close }
}
