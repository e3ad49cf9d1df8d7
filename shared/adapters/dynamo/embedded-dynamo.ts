import { mkdir, open, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { type MessagePort, Worker } from 'node:worker_threads'
import type { Archive, PutOutcome } from '../../ports/archive.js'
import type { Bucket } from '../../timeseries/bucket.js'
import type { BucketRef } from '../../timeseries/keys.js'
import type { Resolution } from '../../timeseries/resolutions.js'
import { createDynamoClients } from './client.js'
import { applyRetentionScale } from '../../timeseries/resolutions.js'
import { type ArchiveStats, DynamoArchive } from './dynamo-archive.js'
import { ExpirySweeper, type SweepRound } from './expiry-sweeper.js'

/*
 * The embedded DynamoDB: dynalite on loopback in a worker thread of its own, and, for
 * embedded mode, the archive client beside it in that thread.
 *
 * Both are plain JavaScript doing a lot per request: dynalite parses condition expressions
 * and validates and encodes every item, and the AWS SDK runs its middleware stack and signs
 * every call. A write-behind round of conditional puts kept the event loop busy for 50 to
 * 300 ms at a time, and every live update, snapshot and ingest acknowledgement waited
 * behind it. In their own thread that work uses the other core; the main thread only
 * passes buckets to it and back (structured clones of a few hundred bytes each).
 */

export interface DynaliteOptions {
  /** Directory of its LevelDB store (`DATA_DIR/dynalite`); in memory when unset. */
  dir?: string
  /** Loopback port; 0 (default) picks a free one. */
  port?: number
}

/** A running dynalite: its endpoint for the DynamoDB client, and how to stop it. */
export interface DynaliteServer {
  endpoint: string
  port: number
  close: () => Promise<void>
}

/** What the thread needs to host the archive: the table it keeps and the client's region. */
export interface HostedArchiveOptions {
  tableName: string
  region: string
  /** The test retention scale of the process (`retentionScale`), applied in the thread too: the `ttl` of a row is written here. */
  retentionScale?: number
  /** Time between two rounds of deleting expired rows; 0 turns expiry off. Default 1 s. */
  expiryEveryMs?: number
  /** Rows read per expiry round. Default 100. */
  expiryPageSize?: number
}

/** The embedded archive's counters: the archive client's, and rows deleted as expired. */
export interface EmbeddedArchiveStats extends ArchiveStats {
  expired: number
}

/** The thread's entry: plain JavaScript, so it loads the same from the sources and from dist/. */
const THREAD = new URL('./embedded-dynamo-thread.mjs', import.meta.url)
/** A thread that does not finish its close in this time is stopped. */
const CLOSE_TIMEOUT_MS = 10_000

/**
 * Conditional puts in flight at once in the thread. The SDK and dynalite share one thread,
 * so more in flight adds no write throughput (100 puts took ~150 ms at 2, 4 or 16), while
 * a read queues behind all of them: a fold's load of 10 buckets during a round took
 * 29-71 ms at 16, 8-24 ms at 4. Reads are on the ingest path; rounds are not.
 */
const EMBEDDED_WRITE_CONCURRENCY = 4

type Method = 'put' | 'range' | 'get' | 'ping' | 'expire' | 'nextTerm'

/** Messages to the thread. */
export type ToThread = { op: 'close' } | { op: 'call', id: number, method: Method, args: unknown[] }

/** An error as it crosses the thread boundary: structured clone keeps only standard names. */
interface ThreadError { name: string, message: string }

/** Messages from the thread. */
export type FromThread =
  | { op: 'listening', port: number }
  | { op: 'failed', error: string }
  | { op: 'closed' }
  | { op: 'result', id: number, value: unknown, stats: EmbeddedArchiveStats }
  | { op: 'error', id: number, error: ThreadError, stats: EmbeddedArchiveStats }

function toThreadError (err: unknown): ThreadError {
  if (err instanceof Error) return { name: err.name, message: err.message }
  return { name: 'Error', message: String(err) }
}

function fromThreadError (error: ThreadError): Error {
  const err = new Error(error.message)
  err.name = error.name
  return err
}

/** A put's outcome with its errors made cloneable. */
function outcomeToThread (outcome: PutOutcome): PutOutcome {
  return {
    written: outcome.written,
    superseded: outcome.superseded,
    rejected: outcome.rejected.map(({ bucket, error }) => ({ bucket, error: toThreadError(error) })),
    failed: outcome.failed,
    ...(outcome.failure === undefined ? {} : { failure: toThreadError(outcome.failure) })
  }
}

function outcomeFromThread (outcome: PutOutcome): PutOutcome {
  return {
    ...outcome,
    rejected: outcome.rejected.map(({ bucket, error }) => ({ bucket, error: fromThreadError(error as ThreadError) })),
    ...(outcome.failure === undefined ? {} : { failure: fromThreadError(outcome.failure as ThreadError) })
  }
}

interface Thread {
  worker: Worker
  port: number
  close: () => Promise<void>
}

async function startThread (options: DynaliteOptions, archive?: HostedArchiveOptions): Promise<Thread> {
  if (options.dir !== undefined) await mkdir(options.dir, { recursive: true })
  // Fault points are armed in the main thread only (where the tests aim them), never twice.
  // No `execArgv`: the thread is plain JavaScript and registers its own TypeScript loader
  // when it needs one, so the process's loaders (tsx, test runners) are not started again
  // in it (about a second of start-up each time).
  const worker = new Worker(THREAD, { workerData: { options, archive }, env: { ...process.env, PULSE_FAULTS: '' }, execArgv: [] })
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('error', reject)
    worker.once('exit', (code) => reject(new Error(`the embedded DynamoDB thread exited (${code}) before it listened`)))
    worker.once('message', (message: FromThread) => {
      if (message.op === 'listening') resolve(message.port)
      else reject(new Error(message.op === 'failed' ? message.error : 'the embedded DynamoDB thread closed before it listened'))
    })
  }).catch(async (err: unknown) => {
    await worker.terminate()
    throw err
  })
  // Past start-up a failure of the thread shows as failed calls: the archive reports
  // itself degraded and the write-behind retries, as with any unreachable DynamoDB.
  worker.on('error', () => {})
  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closing ??= (async () => {
      worker.postMessage({ op: 'close' } satisfies ToThread)
      const stopAfter = setTimeout(() => { worker.terminate().catch(() => {}) }, CLOSE_TIMEOUT_MS)
      await exited
      clearTimeout(stopAfter)
    })()
    await closing
  }
  return { worker, port, close }
}

/**
 * Starts dynalite in a worker thread on loopback only, with table state changes instant
 * (no CREATING/DELETING delays), so embedded mode needs no AWS and no separate process.
 */
export async function startDynalite (options: DynaliteOptions = {}): Promise<DynaliteServer> {
  const { port, close } = await startThread(options)
  return { endpoint: `http://127.0.0.1:${port}`, port, close }
}

/**
 * The archive of embedded mode: a {@link DynamoArchive} on dynalite, both running in one
 * worker thread; every call is a message to it. Its contract is the archive's, tested
 * against the same cases as the in-process one.
 */
export class EmbeddedArchive implements Archive {
  readonly #thread: Thread
  readonly #dir: string | undefined
  readonly #calls = new Map<number, { resolve: (value: unknown) => void, reject: (err: Error) => void }>()
  #nextId = 1
  #stats: EmbeddedArchiveStats = { writes: 0, writeCalls: 0, retries: 0, failedPuts: 0, superseded: 0, rejected: 0, expired: 0 }
  #gone: Error | undefined

  private constructor (thread: Thread, dir: string | undefined) {
    this.#thread = thread
    this.#dir = dir
    thread.worker.on('message', (message: FromThread) => {
      if (message.op !== 'result' && message.op !== 'error') return
      this.#stats = message.stats
      const call = this.#calls.get(message.id)
      this.#calls.delete(message.id)
      if (message.op === 'result') call?.resolve(message.value)
      else call?.reject(fromThreadError(message.error))
    })
    thread.worker.once('exit', () => this.#fail(new Error('the embedded DynamoDB thread has stopped')))
  }

  /** Starts the thread with dynalite storing in `dir` (in memory when unset) and the table in place. */
  static async start (options: DynaliteOptions & HostedArchiveOptions): Promise<EmbeddedArchive> {
    const { tableName, region, expiryEveryMs, expiryPageSize, retentionScale, ...server } = options
    const hosted: HostedArchiveOptions = {
      tableName,
      region,
      ...(expiryEveryMs === undefined ? {} : { expiryEveryMs }),
      ...(expiryPageSize === undefined ? {} : { expiryPageSize }),
      ...(retentionScale === undefined ? {} : { retentionScale })
    }
    return new EmbeddedArchive(await startThread(server, hosted), server.dir)
  }

  /**
   * Makes every write acknowledged so far survive a machine crash. dynalite's LevelDB
   * writes its log without syncing (a crash of the process loses nothing, a crash of the
   * machine may), so this syncs the store's write-ahead logs and their directory: a log
   * LevelDB has retired meanwhile was compacted into a table it synced itself.
   */
  async syncStore (): Promise<void> {
    if (this.#dir === undefined) return
    for (const name of await readdir(this.#dir)) {
      if (!name.endsWith('.log')) continue
      const handle = await open(join(this.#dir, name), 'r').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined
        throw err
      })
      if (handle === undefined) continue
      try {
        await handle.datasync()
      } finally {
        await handle.close()
      }
    }
    const dir = await open(this.#dir, 'r')
    try {
      await dir.sync()
    } finally {
      await dir.close()
    }
  }

  /** dynalite's endpoint, for tools that read the table directly. */
  get endpoint (): string {
    return `http://127.0.0.1:${this.#thread.port}`
  }

  /** The archive's counters, as of its last answer. */
  get stats (): Readonly<EmbeddedArchiveStats> {
    return this.#stats
  }

  /** Runs one round of deleting expired rows now (besides the timed ones). */
  async expire (): Promise<SweepRound> {
    return await this.#call('expire', []) as SweepRound
  }

  async put (buckets: Bucket[]): Promise<PutOutcome> {
    return outcomeFromThread(await this.#call('put', [buckets]) as PutOutcome)
  }

  async range (ticker: string, resolution: Resolution, from: number, to: number, now: number): Promise<Bucket[]> {
    return await this.#call('range', [ticker, resolution, from, to, now]) as Bucket[]
  }

  async nextTerm (): Promise<number> {
    return await this.#call('nextTerm', []) as number
  }

  async get (refs: BucketRef[], now: number): Promise<Bucket[]> {
    return await this.#call('get', [refs, now]) as Bucket[]
  }

  async ping (): Promise<void> {
    await this.#call('ping', [])
  }

  /** Lets calls in progress answer, then stops the client, dynalite and the thread. */
  async close (): Promise<void> {
    await this.#thread.close()
  }

  async #call (method: Method, args: unknown[]): Promise<unknown> {
    if (this.#gone !== undefined) throw this.#gone
    const id = this.#nextId++
    return await new Promise((resolve, reject) => {
      this.#calls.set(id, { resolve, reject })
      this.#thread.worker.postMessage({ op: 'call', id, method, args } satisfies ToThread)
    })
  }

  #fail (err: Error): void {
    this.#gone = err
    for (const call of this.#calls.values()) call.reject(err)
    this.#calls.clear()
  }
}

/**
 * The thread's side of {@link EmbeddedArchive}: creates the table on the thread's own
 * dynalite and answers calls from `port` until the returned close is called.
 */
export async function serveArchive (port: MessagePort, endpoint: string, options: HostedArchiveOptions): Promise<() => Promise<void>> {
  // A thread has its own copy of the domain's retention table.
  applyRetentionScale(options.retentionScale ?? 1)
  const archive = await DynamoArchive.open({ region: options.region, tableName: options.tableName, endpoint, writeConcurrency: EMBEDDED_WRITE_CONCURRENCY })
  // Its own client, so a round of expiry never waits behind the archive's puts in the SDK.
  const { doc } = createDynamoClients({ region: options.region, endpoint })
  const sweeper = new ExpirySweeper({ client: doc, tableName: options.tableName, pageSize: options.expiryPageSize ?? 100 })
  const stats = (): EmbeddedArchiveStats => ({ ...archive.stats, expired: sweeper.expired })
  const inFlight = new Set<Promise<void>>()
  const answer = async (message: Extract<ToThread, { op: 'call' }>): Promise<void> => {
    try {
      let value: unknown
      if (message.method === 'put') value = outcomeToThread(await archive.put(...message.args as [Bucket[]]))
      else if (message.method === 'range') value = await archive.range(...message.args as [string, Resolution, number, number, number])
      else if (message.method === 'get') value = await archive.get(...message.args as [BucketRef[], number])
      else if (message.method === 'expire') value = await sweeper.round(Date.now())
      else if (message.method === 'nextTerm') value = await archive.nextTerm()
      else value = await archive.ping()
      port.postMessage({ op: 'result', id: message.id, value, stats: stats() } satisfies FromThread)
    } catch (err) {
      port.postMessage({ op: 'error', id: message.id, error: toThreadError(err), stats: stats() } satisfies FromThread)
    }
  }
  const listener = (message: ToThread): void => {
    if (message.op !== 'call') return
    const answered = answer(message).finally(() => inFlight.delete(answered))
    inFlight.add(answered)
  }
  port.on('message', listener)
  const everyMs = options.expiryEveryMs ?? 1000
  let timer: NodeJS.Timeout | undefined
  let sweeping: Promise<void> = Promise.resolve()
  let closing = false
  const schedule = (): void => {
    if (closing || everyMs <= 0) return
    timer = setTimeout(() => {
      // A failed round (the store busy or closing) is tried again at the next.
      sweeping = sweeper.round(Date.now()).then(() => {}, () => {}).finally(schedule)
    }, everyMs)
    timer.unref()
  }
  schedule()
  return async () => {
    closing = true
    clearTimeout(timer)
    port.off('message', listener)
    await sweeping
    await Promise.all(inFlight)
    await archive.close()
    doc.destroy()
  }
}
