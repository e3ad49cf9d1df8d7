import {
  type BatchGetCommandInput, type DynamoDBDocumentClient,
  BatchGetCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand
} from '@aws-sdk/lib-dynamodb'
import pLimit from 'p-limit'
import { faultPoint } from '../../fault-points.js'
import type { Archive, PutOutcome } from '../../ports/archive.js'
import type { Bucket } from '../../timeseries/bucket.js'
import { isNewerState, TERM_LIMIT } from '../../timeseries/revision.js'
import { type BucketRef, bucketId, seriesKey } from '../../timeseries/keys.js'
import { type Resolution, toIsoSecond } from '../../timeseries/resolutions.js'
import { bucketKey, bucketToItem, itemToBucket } from './bucket-item.js'
import { createDynamoClients, isLocalEndpoint } from './client.js'
import { ensureTable } from './table.js'

/**
 * How long one answer of the archive probe stands for readiness checks and scrapes: they
 * come from every process every few seconds, and the probe is a read the table is billed for.
 */
export const PROBE_CACHE_MS = 5000
/** The key the probe reads: never a bucket's (a PK starts with a ticker, which starts with a capital letter). */
const PROBE_KEY = { PK: '#probe', SK: '#probe' }

/** The row of the term counter (shared/timeseries/revision.ts): never a bucket's, like the probe's. */
const TERM_KEY = { PK: '#term', SK: '#term' }
/**
 * The first term handed out: revs written before positions had terms are far below 2^48 (a
 * bucket reloaded into an empty hot state jumped by 2^32 each time), so terms start above.
 */
export const FIRST_TERM = 2 ** 20

/** BatchGetItem takes at most 100 keys. */
const GET_CHUNK = 100

/**
 * A put replaces the stored item only when it is older: written before (`attribute_not_exists`)
 * or at a lower `rev`. Writers may arrive in any order; the newest rev stays.
 */
const NEWER_REV_ONLY = 'attribute_not_exists(PK) OR #rev < :rev'
/**
 * A final state (written after the bucket's end, `is_partial: false`) also replaces the same
 * rev stored while the bucket was still open: the row becomes final without a change of
 * state, and a same-rev write onto a final row is still refused (real contention).
 */
const NEWER_REV_OR_FINAL = `${NEWER_REV_ONLY} OR (#rev = :rev AND #partial = :open)`

/** DynamoDB's answers that are about the item itself (too large, malformed), not the service. */
const ITEM_ERRORS = new Set(['ValidationException', 'ItemCollectionSizeLimitExceededException'])

function errorName (err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'name' in err && typeof err.name === 'string' ? err.name : undefined
}

export interface DynamoArchiveOptions {
  client: DynamoDBDocumentClient
  tableName: string
  /** BatchGetItem calls per chunk, the first included, before unprocessed keys fail the read. Default 8. */
  maxAttempts?: number
  /** Backoff before the first retry; doubles per attempt, full jitter. Default 25 ms. */
  baseDelayMs?: number
  /** Largest backoff. Default 2 s. */
  maxDelayMs?: number
  /** Batch reads in flight at once. Default 4. */
  concurrency?: number
  /** Conditional PutItem calls in flight at once. Default 16. */
  writeConcurrency?: number
  /** Query page size; unset lets DynamoDB page at 1 MB. */
  pageSize?: number
  /** Clock for the stored `is_partial` (false once the bucket has ended: its row is final). */
  now?: () => number
  /** Destroy the client on {@link DynamoArchive.close}. */
  ownsClient?: boolean
}

/** Counters for metrics, monotonic since the archive was created. */
export interface ArchiveStats {
  /** Bucket items written. */
  writes: number
  /** PutItem calls made. */
  writeCalls: number
  /** Batch reads repeated for unprocessed keys. */
  retries: number
  /** Puts that left buckets unwritten because DynamoDB did not answer. */
  failedPuts: number
  /** Writes refused because the table already held that rev or a newer one. */
  superseded: number
  /** Writes DynamoDB refused for the item itself (e.g. over the 400 KB item limit). */
  rejected: number
}

/** Items that DynamoDB left unprocessed after every attempt. */
export class UnprocessedError extends Error {
  constructor (readonly operation: string, readonly remaining: number, attempts: number) {
    super(`${operation}: ${remaining} requests still unprocessed after ${attempts} attempts`)
    this.name = 'UnprocessedError'
  }
}

type KeysAndAttributes = NonNullable<BatchGetCommandInput['RequestItems']>[string]

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

function chunks<T> (items: readonly T[], size: number): T[][] {
  const result: T[][] = []
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size))
  return result
}

async function eachLimit<T> (items: readonly T[], limit: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await run(items[next++] as T)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/** Only one state per bucket per call, the newest, so one batch never holds a key twice. */
function newestPerBucket (buckets: readonly Bucket[]): Bucket[] {
  const newest = new Map<string, Bucket>()
  for (const bucket of buckets) {
    const id = bucketId(bucket)
    const seen = newest.get(id)
    if (isNewerState(bucket, seen)) newest.set(id, bucket)
  }
  return [...newest.values()]
}

/**
 * Bucket ttl is whole seconds and bucket ends are whole minutes, so `ttl > floor(now/1000)`
 * is exactly the hot state's `isRetained`: both sides agree on what has expired.
 */
function nowSeconds (now: number): number {
  return Math.floor(now / 1000)
}

/**
 * The archive on DynamoDB (or dynalite) through the document client. Full bucket states
 * are written with conditional PutItem calls, several in flight at once, because
 * BatchWriteItem cannot carry a condition and TransactWriteItems fails as a whole when one
 * condition fails; the SDK retries throttling and server errors within the client's
 * timeouts (see `client.ts`).
 */
export class DynamoArchive implements Archive {
  readonly #client: DynamoDBDocumentClient
  readonly #table: string
  readonly #maxAttempts: number
  readonly #baseDelayMs: number
  readonly #maxDelayMs: number
  readonly #concurrency: number
  readonly #writeConcurrency: number
  readonly #pageSize: number | undefined
  readonly #now: () => number
  readonly #ownsClient: boolean
  /** The last archive probe and when it was sent (see {@link DynamoArchive.ping}). */
  #probe: { at: number, answered: Promise<void> } | undefined
  readonly #stats: ArchiveStats = { writes: 0, writeCalls: 0, retries: 0, failedPuts: 0, superseded: 0, rejected: 0 }

  constructor (options: DynamoArchiveOptions) {
    this.#client = options.client
    this.#table = options.tableName
    this.#maxAttempts = options.maxAttempts ?? 8
    this.#baseDelayMs = options.baseDelayMs ?? 25
    this.#maxDelayMs = options.maxDelayMs ?? 2000
    this.#concurrency = options.concurrency ?? 4
    this.#writeConcurrency = options.writeConcurrency ?? 16
    this.#pageSize = options.pageSize
    this.#now = options.now ?? Date.now
    this.#ownsClient = options.ownsClient ?? false
  }

  /**
   * An archive with its own client (dummy credentials for emulators) on `tableName`. With an
   * endpoint (dynalite, DynamoDB Local) a missing table is created first; on real DynamoDB
   * the table comes from `npm run table:create`.
   */
  static async open (options: { region: string, endpoint?: string | undefined, tableName: string, writeConcurrency?: number }): Promise<DynamoArchive> {
    const { client, doc } = createDynamoClients({ region: options.region, endpoint: options.endpoint })
    if (options.endpoint !== undefined) await ensureTable(client, options.tableName, { local: isLocalEndpoint(options.endpoint) })
    return new DynamoArchive({
      client: doc,
      tableName: options.tableName,
      ownsClient: true,
      ...(options.writeConcurrency === undefined ? {} : { writeConcurrency: options.writeConcurrency })
    })
  }

  get tableName (): string {
    return this.#table
  }

  /** A snapshot of the counters. */
  get stats (): Readonly<ArchiveStats> {
    return { ...this.#stats }
  }

  async put (buckets: Bucket[]): Promise<PutOutcome> {
    // The window of a stale write: states taken from the hot state, not yet in the table.
    await faultPoint('archive.put')
    const now = this.#now()
    const outcome: PutOutcome = { written: [], superseded: [], rejected: [], failed: [] }
    let unavailable = false
    const limit = pLimit(this.#writeConcurrency)
    await Promise.all(newestPerBucket(buckets).map(async (bucket) => await limit(async () => {
      // Once DynamoDB stops answering, the rest would only wait for their timeouts.
      if (unavailable) {
        outcome.failed.push(bucket)
        return
      }
      try {
        await this.#putIfNewer(bucket, now)
        outcome.written.push(bucket)
      } catch (err) {
        const name = errorName(err)
        if (name === 'ConditionalCheckFailedException') {
          this.#stats.superseded++
          outcome.superseded.push(bucket)
        } else if (name !== undefined && ITEM_ERRORS.has(name)) {
          this.#stats.rejected++
          outcome.rejected.push({ bucket, error: err })
        } else {
          unavailable = true
          outcome.failure ??= err
          outcome.failed.push(bucket)
        }
      }
    })))
    if (unavailable) this.#stats.failedPuts++
    return outcome
  }

  /** One atomic update of the counter row; DynamoDB applies concurrent ones one after another. */
  async nextTerm (): Promise<number> {
    const out = await this.#client.send(new UpdateCommand({
      TableName: this.#table,
      Key: TERM_KEY,
      UpdateExpression: 'SET #term = if_not_exists(#term, :first) + :one',
      ExpressionAttributeNames: { '#term': 'term' },
      ExpressionAttributeValues: { ':first': FIRST_TERM - 1, ':one': 1 },
      ReturnValues: 'UPDATED_NEW'
    }))
    const term = Number(out.Attributes?.term)
    if (!Number.isSafeInteger(term) || term >= TERM_LIMIT) throw new Error(`the term counter holds ${String(out.Attributes?.term)}, past the last term ${TERM_LIMIT - 1}`)
    return term
  }

  async range (ticker: string, resolution: Resolution, from: number, to: number, now: number): Promise<Bucket[]> {
    // Starts are whole seconds: round `from` up and `to - 1` down, then BETWEEN is inclusive.
    const low = Math.ceil(from / 1000) * 1000
    const high = Math.floor((to - 1) / 1000) * 1000
    if (low > high) return []
    const buckets: Bucket[] = []
    let exclusiveStartKey: Record<string, unknown> | undefined
    do {
      const out = await this.#client.send(new QueryCommand({
        TableName: this.#table,
        KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
        FilterExpression: '#ttl > :now',
        ExpressionAttributeNames: { '#pk': 'PK', '#sk': 'SK', '#ttl': 'ttl' },
        ExpressionAttributeValues: {
          ':pk': seriesKey(ticker, resolution),
          ':from': toIsoSecond(low),
          ':to': toIsoSecond(high),
          ':now': nowSeconds(now)
        },
        ...(this.#pageSize === undefined ? {} : { Limit: this.#pageSize }),
        ...(exclusiveStartKey === undefined ? {} : { ExclusiveStartKey: exclusiveStartKey })
      }))
      for (const item of out.Items ?? []) buckets.push(itemToBucket(item))
      exclusiveStartKey = out.LastEvaluatedKey
    } while (exclusiveStartKey !== undefined)
    return buckets
  }

  async get (refs: BucketRef[], now: number): Promise<Bucket[]> {
    const keys = new Map<string, { PK: string, SK: string }>()
    for (const ref of refs) keys.set(bucketId(ref), bucketKey(ref))
    const found: Bucket[] = []
    await eachLimit(chunks([...keys.values()], GET_CHUNK), this.#concurrency, async (chunk) => {
      for (const item of await this.#getChunk(chunk)) {
        if (typeof item.ttl === 'number' && item.ttl > nowSeconds(now)) found.push(itemToBucket(item))
      }
    })
    return found
  }

  /**
   * A data-plane probe: an eventually consistent GetItem of a fixed key that holds nothing
   * (DescribeTable is a control-plane call AWS asks clients not to poll). One probe answers
   * every ping for {@link PROBE_CACHE_MS}, concurrent ones included.
   */
  async ping (): Promise<void> {
    const now = Date.now()
    if (this.#probe === undefined || now - this.#probe.at >= PROBE_CACHE_MS) {
      const answered = this.#client.send(new GetCommand({ TableName: this.#table, Key: PROBE_KEY, ProjectionExpression: 'PK' })).then(() => {})
      const probe = { at: now, answered }
      // Only an answer is kept: after a failure the next caller (the write-behind probing
      // while it backs off) asks again rather than reading a stale failure for 5 s.
      answered.catch(() => { if (this.#probe === probe) this.#probe = undefined })
      this.#probe = probe
    }
    await this.#probe.answered
  }

  async close (): Promise<void> {
    if (this.#ownsClient) this.#client.destroy()
  }

  #backoff (attempt: number): number {
    return Math.random() * Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** (attempt - 1))
  }

  async #putIfNewer (bucket: Bucket, now: number): Promise<void> {
    this.#stats.writeCalls++
    const item = bucketToItem(bucket, now)
    await this.#client.send(new PutCommand({
      TableName: this.#table,
      Item: item,
      ...(item.is_partial
        ? { ConditionExpression: NEWER_REV_ONLY, ExpressionAttributeNames: { '#rev': 'rev' }, ExpressionAttributeValues: { ':rev': bucket.rev } }
        : {
            ConditionExpression: NEWER_REV_OR_FINAL,
            ExpressionAttributeNames: { '#rev': 'rev', '#partial': 'is_partial' },
            ExpressionAttributeValues: { ':rev': bucket.rev, ':open': true }
          })
    }))
    this.#stats.writes++
  }

  async #getChunk (keys: Array<{ PK: string, SK: string }>): Promise<Array<Record<string, unknown>>> {
    const items: Array<Record<string, unknown>> = []
    let pending: KeysAndAttributes = { Keys: keys, ConsistentRead: true }
    for (let attempt = 1; ; attempt++) {
      const out = await this.#client.send(new BatchGetCommand({ RequestItems: { [this.#table]: pending } }))
      items.push(...(out.Responses?.[this.#table] ?? []))
      const unprocessed = out.UnprocessedKeys?.[this.#table]
      if (unprocessed?.Keys === undefined || unprocessed.Keys.length === 0) return items
      if (attempt >= this.#maxAttempts) throw new UnprocessedError('BatchGetItem', unprocessed.Keys.length, attempt)
      this.#stats.retries++
      await sleep(this.#backoff(attempt))
      pending = unprocessed
    }
  }
}
