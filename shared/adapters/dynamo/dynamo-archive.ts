import { DescribeTableCommand } from '@aws-sdk/client-dynamodb'
import {
  type BatchGetCommandInput, type BatchWriteCommandInput, type DynamoDBDocumentClient,
  BatchGetCommand, BatchWriteCommand, QueryCommand
} from '@aws-sdk/lib-dynamodb'
import type { Config } from '../../config/config.js'
import type { Archive } from '../../ports/index.js'
import { type Bucket, type BucketRef, type Resolution, bucketId, seriesKey, toIsoSecond } from '../../timeseries/index.js'
import { bucketKey, bucketToItem, itemToBucket } from './bucket-item.js'
import { createDynamoClients, isLocalEndpoint } from './client.js'
import { tableName } from './table.js'

/** BatchWriteItem takes at most 25 requests, BatchGetItem at most 100 keys. */
const WRITE_CHUNK = 25
const GET_CHUNK = 100

export interface DynamoArchiveOptions {
  client: DynamoDBDocumentClient
  tableName: string
  /** Batch calls per chunk, the first included, before unprocessed items fail the put. Default 8. */
  maxAttempts?: number
  /** Backoff before the first retry; doubles per attempt, full jitter. Default 25 ms. */
  baseDelayMs?: number
  /** Largest backoff. Default 2 s. */
  maxDelayMs?: number
  /** Batch calls in flight at once. Default 4. */
  concurrency?: number
  /** Query page size; unset lets DynamoDB page at 1 MB. */
  pageSize?: number
  /** Clock for the stored `is_partial`. */
  now?: () => number
  /** Destroy the client on {@link DynamoArchive.close}. */
  ownsClient?: boolean
}

/** Counters for metrics, monotonic since the archive was created. */
export interface ArchiveStats {
  /** Bucket items written (each PutRequest that DynamoDB processed). */
  writes: number
  /** BatchWriteItem calls made. */
  writeCalls: number
  /** Batch calls repeated for unprocessed items or keys. */
  retries: number
  /** Puts rejected because items stayed unprocessed or a call failed. */
  failedPuts: number
}

/** Items that DynamoDB left unprocessed after every attempt. */
export class UnprocessedError extends Error {
  constructor (readonly operation: string, readonly remaining: number, attempts: number) {
    super(`${operation}: ${remaining} requests still unprocessed after ${attempts} attempts`)
    this.name = 'UnprocessedError'
  }
}

type WriteRequests = NonNullable<BatchWriteCommandInput['RequestItems']>[string]
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
    if (seen === undefined || bucket.rev > seen.rev) newest.set(id, bucket)
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
 * The archive on DynamoDB (or dynalite) through the document client: full bucket states
 * written with BatchWriteItem, unprocessed items retried with backoff and jitter.
 */
export class DynamoArchive implements Archive {
  readonly #client: DynamoDBDocumentClient
  readonly #table: string
  readonly #maxAttempts: number
  readonly #baseDelayMs: number
  readonly #maxDelayMs: number
  readonly #concurrency: number
  readonly #pageSize: number | undefined
  readonly #now: () => number
  readonly #ownsClient: boolean
  readonly #stats: ArchiveStats = { writes: 0, writeCalls: 0, retries: 0, failedPuts: 0 }

  constructor (options: DynamoArchiveOptions) {
    this.#client = options.client
    this.#table = options.tableName
    this.#maxAttempts = options.maxAttempts ?? 8
    this.#baseDelayMs = options.baseDelayMs ?? 25
    this.#maxDelayMs = options.maxDelayMs ?? 2000
    this.#concurrency = options.concurrency ?? 4
    this.#pageSize = options.pageSize
    this.#now = options.now ?? Date.now
    this.#ownsClient = options.ownsClient ?? false
  }

  /** An archive on the table of `config.env`, with its own client (dummy credentials for emulators). */
  static fromConfig (config: Pick<Config, 'awsRegion' | 'dynamodbEndpoint' | 'env'>): DynamoArchive {
    const { doc } = createDynamoClients({ region: config.awsRegion, endpoint: config.dynamodbEndpoint })
    return new DynamoArchive({ client: doc, tableName: tableName(config.env), ownsClient: true })
  }

  /** Whether `config` points at an emulator rather than AWS. */
  static isLocal (config: Pick<Config, 'dynamodbEndpoint'>): boolean {
    return isLocalEndpoint(config.dynamodbEndpoint)
  }

  get tableName (): string {
    return this.#table
  }

  /** A snapshot of the counters. */
  get stats (): Readonly<ArchiveStats> {
    return { ...this.#stats }
  }

  async put (buckets: Bucket[]): Promise<void> {
    const now = this.#now()
    const items = newestPerBucket(buckets).map((bucket) => bucketToItem(bucket, now))
    try {
      await eachLimit(chunks(items, WRITE_CHUNK), this.#concurrency, async (chunk) => {
        await this.#writeChunk(chunk.map((Item) => ({ PutRequest: { Item } })))
      })
    } catch (err) {
      this.#stats.failedPuts++
      throw err
    }
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

  async ping (): Promise<void> {
    await this.#client.send(new DescribeTableCommand({ TableName: this.#table }))
  }

  async close (): Promise<void> {
    if (this.#ownsClient) this.#client.destroy()
  }

  #backoff (attempt: number): number {
    return Math.random() * Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** (attempt - 1))
  }

  async #writeChunk (requests: WriteRequests): Promise<void> {
    let pending = requests
    for (let attempt = 1; ; attempt++) {
      this.#stats.writeCalls++
      const out = await this.#client.send(new BatchWriteCommand({ RequestItems: { [this.#table]: pending } }))
      const unprocessed = out.UnprocessedItems?.[this.#table] ?? []
      this.#stats.writes += pending.length - unprocessed.length
      if (unprocessed.length === 0) return
      if (attempt >= this.#maxAttempts) throw new UnprocessedError('BatchWriteItem', unprocessed.length, attempt)
      this.#stats.retries++
      await sleep(this.#backoff(attempt))
      pending = unprocessed
    }
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
