import { pathToFileURL } from 'node:url'
import { loadConfig } from '../shared/config/config.js'
import { createDynamoClients, isLocalEndpoint } from '../shared/adapters/dynamo/client.js'
import { ensureTable, tableName } from '../shared/adapters/dynamo/table.js'

/**
 * `npm run table:create`: creates `{PULSE_ENV}-sentiment-timeseries` and enables TTL on
 * `ttl`, on real DynamoDB (or `DYNAMODB_ENDPOINT`). Safe to run again.
 */
export async function main (env: Record<string, string | undefined> = process.env): Promise<void> {
  const config = loadConfig(env)
  const name = tableName(config.env)
  const local = isLocalEndpoint(config.dynamodbEndpoint)
  const { client } = createDynamoClients({ region: config.awsRegion, endpoint: config.dynamodbEndpoint })
  const where = config.dynamodbEndpoint ?? `DynamoDB ${config.awsRegion}`
  try {
    const result = await ensureTable(client, name, { local })
    console.log(`table ${name} on ${where}: ${result.created ? 'created' : 'already exists'}, ACTIVE`)
    const ttl = {
      enabled: 'TTL enabled on attribute ttl',
      'already-enabled': 'TTL already enabled on attribute ttl',
      'unsupported-locally': 'TTL not supported by this local endpoint (reads filter expired buckets)'
    }[result.ttl]
    console.log(ttl)
  } finally {
    client.destroy()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? `${err.name}: ${err.message}` : err)
    process.exitCode = 1
  })
}
