import {
  type DynamoDBClient,
  CreateTableCommand, DescribeTableCommand, DescribeTimeToLiveCommand, UpdateTimeToLiveCommand
} from '@aws-sdk/client-dynamodb'

/** The table of an environment: `{env}-sentiment-timeseries`. */
export function tableName (env: string): string {
  return `${env}-sentiment-timeseries`
}

/** The TTL attribute (epoch seconds = bucket end + retention). */
export const TTL_ATTRIBUTE = 'ttl'

export interface EnsureTableOptions {
  /** Talking to an emulator (dynalite): tolerate only its missing `UpdateTimeToLive`. */
  local: boolean
  /** How long to wait for the table to become ACTIVE. Default 60 s. */
  timeoutMs?: number
}

/** What {@link ensureTable} did, for callers that report it. */
export interface EnsureTableResult {
  created: boolean
  ttl: 'enabled' | 'already-enabled' | 'unsupported-locally'
}

function errorName (err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'name' in err && typeof err.name === 'string' ? err.name : undefined
}

/** dynalite answers operations it does not implement with this exception. */
function isUnknownOperation (err: unknown): boolean {
  return errorName(err) === 'UnknownOperationException'
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function tableStatus (client: DynamoDBClient, name: string): Promise<string | undefined> {
  try {
    const out = await client.send(new DescribeTableCommand({ TableName: name }))
    return out.Table?.TableStatus ?? 'UNKNOWN'
  } catch (err) {
    if (errorName(err) === 'ResourceNotFoundException') return undefined
    throw err
  }
}

async function createTable (client: DynamoDBClient, name: string): Promise<boolean> {
  try {
    await client.send(new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'PK', AttributeType: 'S' },
        { AttributeName: 'SK', AttributeType: 'S' }
      ],
      KeySchema: [
        { AttributeName: 'PK', KeyType: 'HASH' },
        { AttributeName: 'SK', KeyType: 'RANGE' }
      ]
    }))
    return true
  } catch (err) {
    // Another process created it between our describe and create: that is the goal reached.
    if (errorName(err) === 'ResourceInUseException') return false
    throw err
  }
}

async function waitActive (client: DynamoDBClient, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (let delay = 50; ; delay = Math.min(delay * 2, 2000)) {
    const status = await tableStatus(client, name)
    if (status === 'ACTIVE') return
    if (Date.now() > deadline) throw new Error(`table ${name} is ${status ?? 'missing'} after ${timeoutMs} ms`)
    await sleep(delay)
  }
}

async function enableTtl (client: DynamoDBClient, name: string, local: boolean): Promise<EnsureTableResult['ttl']> {
  try {
    const described = await client.send(new DescribeTimeToLiveCommand({ TableName: name }))
    const ttl = described.TimeToLiveDescription
    if (ttl?.AttributeName === TTL_ATTRIBUTE && (ttl.TimeToLiveStatus === 'ENABLED' || ttl.TimeToLiveStatus === 'ENABLING')) {
      return 'already-enabled'
    }
    await client.send(new UpdateTimeToLiveCommand({
      TableName: name,
      TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true }
    }))
    return 'enabled'
  } catch (err) {
    // Emulators lack TTL; reads filter expired buckets anyway. Real DynamoDB errors surface.
    if (local && isUnknownOperation(err)) return 'unsupported-locally'
    throw err
  }
}

/**
 * Makes sure the table exists and is ACTIVE (PAY_PER_REQUEST, `PK` hash + `SK` range) and
 * that TTL is enabled on `ttl`. Idempotent, and safe when several processes race.
 */
export async function ensureTable (client: DynamoDBClient, name: string, options: EnsureTableOptions): Promise<EnsureTableResult> {
  let created = false
  if (await tableStatus(client, name) === undefined) created = await createTable(client, name)
  await waitActive(client, name, options.timeoutMs ?? 60_000)
  const ttl = await enableTtl(client, name, options.local)
  return { created, ttl }
}
