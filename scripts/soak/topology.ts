import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type ManagedProcess, startDynaliteProcess, startPulseProcess, type Teardown } from '../../test/helpers/processes.js'
import { startRedisServer } from '../../test/helpers/redis-server.js'

export type SoakMode = 'embedded' | 'cluster'

/** What the soak runs against: the Pulse processes and where their state lives. */
export interface SoakSystem {
  mode: SoakMode
  /** `PULSE_ENV` (the archive table is `<env>-sentiment-timeseries`). */
  env: string
  gateways: ManagedProcess[]
  /** Every Pulse process, named, each serving `/metrics` on its port. */
  processes: Array<{ name: string, proc: ManagedProcess }>
  /** Embedded: `DATA_DIR` (its `journal/` and `dynalite/`). */
  dataDir: string | undefined
  /** Directory of the archive's LevelDB store. */
  archiveDir: string
  /** DynamoDB endpoint of the archive, for scans. */
  archiveEndpoint: string
  /** Cluster: the Redis everything shares. */
  redisUrl: string | undefined
}

/** Teardown steps of one soak run, run last-registered first. */
export class Teardowns implements Teardown {
  readonly #steps: Array<() => unknown> = []

  teardown (fn: () => unknown): void {
    this.#steps.push(fn)
  }

  async run (): Promise<void> {
    for (const step of this.#steps.reverse()) await Promise.resolve(step()).catch(() => {})
    this.#steps.length = 0
  }
}

export interface TopologyOptions {
  tickers: readonly string[]
  retentionScale: number
}

function baseEnv (options: TopologyOptions, env: string): Record<string, string> {
  return {
    PULSE_ENV: env,
    TICKERS: options.tickers.join(','),
    PULSE_TEST_RETENTION_SCALE: String(options.retentionScale),
    LOG_LEVEL: 'info'
  }
}

/** One Pulse process with every role, a journal and dynalite under its own `DATA_DIR`. */
export async function startEmbedded (t: Teardowns, options: TopologyOptions): Promise<SoakSystem> {
  const dataDir = await mkdtemp(join(tmpdir(), 'pulse-soak-'))
  t.teardown(async () => await rm(dataDir, { recursive: true, force: true }))
  const env = `s${randomBytes(3).toString('hex')}`
  const pulse = await startPulseProcess(t, { role: 'all', env: { ...baseEnv(options, env), DATA_DIR: dataDir } })
  t.teardown(async () => await pulse.stop())
  return {
    mode: 'embedded',
    env,
    gateways: [pulse],
    processes: [{ name: 'pulse', proc: pulse }],
    dataDir,
    archiveDir: join(dataDir, 'dynalite'),
    archiveEndpoint: await embeddedDynaliteEndpoint(pulse),
    redisUrl: undefined
  }
}

/** Two gateways and two workers on one Redis, with dynalite in a process of its own as DynamoDB. */
export async function startCluster (t: Teardowns, options: TopologyOptions): Promise<SoakSystem> {
  const redis = await startRedisServer(t)
  const dynalite = await startDynaliteProcess(t)
  const env = `s${randomBytes(3).toString('hex')}`
  const processEnv = { ...baseEnv(options, env), REDIS_URL: redis.url, DYNAMODB_ENDPOINT: dynalite.endpoint }
  const start = async (role: 'gateway' | 'worker'): Promise<ManagedProcess> => {
    const proc = await startPulseProcess(t, { role, env: processEnv })
    t.teardown(async () => await proc.stop())
    return proc
  }
  // Workers first: they create the table a gateway's archive reads.
  const workers = [await start('worker'), await start('worker')]
  const gateways = [await start('gateway'), await start('gateway')]
  return {
    mode: 'cluster',
    env,
    gateways,
    processes: [
      ...gateways.map((proc, i) => ({ name: `gateway${i + 1}`, proc })),
      ...workers.map((proc, i) => ({ name: `worker${i + 1}`, proc }))
    ],
    dataDir: undefined,
    archiveDir: dynalite.dir,
    archiveEndpoint: dynalite.endpoint,
    redisUrl: redis.url
  }
}

/**
 * The loopback port the embedded dynalite thread of `proc` listens on. Pulse does not
 * announce it, so it is read from Linux's socket tables: the listening sockets the process
 * owns, less its HTTP port, and the one that answers as DynamoDB.
 */
async function embeddedDynaliteEndpoint (proc: ManagedProcess): Promise<string> {
  const pid = proc.pid()
  if (pid === undefined) throw new Error('the embedded Pulse process is not running')
  const inodes = new Set<string>()
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
    const match = /^socket:\[(\d+)\]$/.exec(target)
    if (match !== null) inodes.add(match[1] as string)
  }
  const ports: number[] = []
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '')
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/)
      // local_address is HEXIP:HEXPORT, state 0A is LISTEN, field 9 the inode.
      if (fields[3] !== '0A' || !inodes.has(fields[9] ?? '')) continue
      const port = parseInt((fields[1] ?? '').split(':')[1] ?? '', 16)
      if (port !== proc.port) ports.push(port)
    }
  }
  for (const port of ports) {
    const answer = await fetch(`http://127.0.0.1:${port}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.ListTables' },
      body: '{}'
    }).then(async (r) => await r.text()).catch(() => '')
    if (answer.includes('TableNames') || answer.includes('__type')) return `http://127.0.0.1:${port}`
  }
  throw new Error(`no DynamoDB endpoint among the listening ports ${ports.join(', ')} of process ${pid}`)
}
