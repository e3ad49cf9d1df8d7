import { type DynamoDBDocumentClient, DeleteCommand, ScanCommand } from '@aws-sdk/lib-dynamodb'

/** What one round of {@link ExpirySweeper} did. */
export interface SweepRound {
  /** Rows read. */
  examined: number
  /** Rows deleted because their `ttl` had passed. */
  expired: number
  /** The round reached the end of the table; the next starts again at its beginning. */
  wrapped: boolean
}

export interface ExpirySweeperOptions {
  client: DynamoDBDocumentClient
  tableName: string
  /** Rows read per round. Default 100. */
  pageSize?: number
}

/**
 * Deletes rows whose `ttl` (epoch seconds) is before now, as DynamoDB's TTL does; dynalite
 * has no TTL, so without this the embedded archive would keep every bucket ever written.
 * Each round reads one page of the table (at most `pageSize` rows) from where the last
 * stopped and deletes the expired rows in it, so a round's work is bounded whatever the
 * table's size; round after round it walks the whole table and starts over. A delete is
 * conditional on the row still being expired.
 */
export class ExpirySweeper {
  readonly #client: DynamoDBDocumentClient
  readonly #table: string
  readonly #pageSize: number
  #cursor: Record<string, unknown> | undefined
  #expired = 0

  constructor (options: ExpirySweeperOptions) {
    this.#client = options.client
    this.#table = options.tableName
    this.#pageSize = options.pageSize ?? 100
  }

  /** Rows deleted since the sweeper was made. */
  get expired (): number {
    return this.#expired
  }

  async round (now: number): Promise<SweepRound> {
    const nowSeconds = Math.floor(now / 1000)
    const names = { '#pk': 'PK', '#sk': 'SK', '#ttl': 'ttl' }
    const out = await this.#client.send(new ScanCommand({
      TableName: this.#table,
      Limit: this.#pageSize,
      ProjectionExpression: '#pk, #sk, #ttl',
      FilterExpression: '#ttl < :now',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: { ':now': nowSeconds },
      ...(this.#cursor === undefined ? {} : { ExclusiveStartKey: this.#cursor })
    }))
    let expired = 0
    for (const row of out.Items ?? []) {
      try {
        await this.#client.send(new DeleteCommand({
          TableName: this.#table,
          Key: { PK: row.PK, SK: row.SK },
          ConditionExpression: '#ttl < :now',
          ExpressionAttributeNames: { '#ttl': 'ttl' },
          ExpressionAttributeValues: { ':now': nowSeconds }
        }))
        expired++
        this.#expired++
      } catch (err) {
        if ((err as { name?: unknown }).name !== 'ConditionalCheckFailedException') throw err
      }
    }
    this.#cursor = out.LastEvaluatedKey
    return { examined: out.ScannedCount ?? 0, expired, wrapped: this.#cursor === undefined }
  }
}
