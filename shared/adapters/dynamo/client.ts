import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb'

/**
 * Network bounds of every DynamoDB call over a network (not on loopback, see
 * {@link isLoopbackEndpoint}). A call that cannot connect within
 * `CONNECTION_TIMEOUT_MS`, or is not answered within `REQUEST_TIMEOUT_MS`, fails, and the
 * SDK tries at most `MAX_ATTEMPTS` times: about 45 s in the worst case, inside the
 * 60 s write-behind lease, so a flusher gives up on a stalled write long before another
 * may take its buckets. (Conditional writes keep a write that lands late harmless anyway.)
 */
export const DYNAMODB_TIMEOUTS = {
  CONNECTION_TIMEOUT_MS: 5_000,
  REQUEST_TIMEOUT_MS: 10_000,
  MAX_ATTEMPTS: 3,
  /**
   * Sockets per endpoint. The connection timeout also runs while a call waits for a
   * socket, so the pool is sized well above the calls Pulse keeps in flight.
   */
  MAX_SOCKETS: 256
} as const

export interface DynamoClientOptions {
  region: string
  /** Unset: real DynamoDB in `region`. Set: that endpoint (dynalite, DynamoDB Local, LocalStack). */
  endpoint?: string | undefined
}

/** The low-level client (table management) and the document client over it (data). */
export interface DynamoClients {
  client: DynamoDBClient
  doc: DynamoDBDocumentClient
}

/**
 * True when `endpoint` is not AWS itself: dynalite or another emulator, which accepts any
 * signature and may lack some operations.
 */
export function isLocalEndpoint (endpoint: string | undefined): boolean {
  if (endpoint === undefined) return false
  return !new URL(endpoint).hostname.endsWith('.amazonaws.com')
}

/**
 * True for an endpoint on this machine: dynalite inside the process (embedded mode) or
 * beside it. No network can stall there, and a busy event loop would only make the
 * timeouts fire for nothing, so those calls go without them.
 */
export function isLoopbackEndpoint (endpoint: string | undefined): boolean {
  if (endpoint === undefined) return false
  return ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(endpoint).hostname)
}

/** Whether the default AWS credential chain has anything to find on this machine. */
function hasAwsCredentials (env: NodeJS.ProcessEnv): boolean {
  if (env.AWS_ACCESS_KEY_ID !== undefined || env.AWS_PROFILE !== undefined) return true
  if (env.AWS_WEB_IDENTITY_TOKEN_FILE !== undefined || env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI !== undefined) return true
  const credentialsFile = env.AWS_SHARED_CREDENTIALS_FILE ?? join(homedir(), '.aws', 'credentials')
  const configFile = env.AWS_CONFIG_FILE ?? join(homedir(), '.aws', 'config')
  return existsSync(credentialsFile) || existsSync(configFile)
}

/**
 * Creates the DynamoDB clients. For a local endpoint on a machine without AWS credentials
 * it signs with dummy ones, because emulators ignore signatures and the SDK would
 * otherwise fail before sending anything, which is what keeps `npm start` working on a
 * bare machine. Real DynamoDB always goes through the default credential chain.
 */
export function createDynamoClients (options: DynamoClientOptions, env: NodeJS.ProcessEnv = process.env): DynamoClients {
  const local = isLocalEndpoint(options.endpoint)
  const client = new DynamoDBClient({
    region: options.region,
    maxAttempts: DYNAMODB_TIMEOUTS.MAX_ATTEMPTS,
    requestHandler: {
      ...(isLoopbackEndpoint(options.endpoint)
        ? {}
        : {
            connectionTimeout: DYNAMODB_TIMEOUTS.CONNECTION_TIMEOUT_MS,
            requestTimeout: DYNAMODB_TIMEOUTS.REQUEST_TIMEOUT_MS,
            throwOnRequestTimeout: true
          }),
      httpAgent: { keepAlive: true, maxSockets: DYNAMODB_TIMEOUTS.MAX_SOCKETS },
      httpsAgent: { keepAlive: true, maxSockets: DYNAMODB_TIMEOUTS.MAX_SOCKETS }
    },
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(local && !hasAwsCredentials(env) ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {})
  })
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } })
  return { client, doc }
}
