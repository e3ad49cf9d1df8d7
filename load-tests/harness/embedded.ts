import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

/** An embedded Pulse running in its own process for the length of a run. */
export interface EmbeddedPulse {
  url: string
  ingestKey: string
  pid: number
  stop: () => Promise<void>
}

const MAIN = fileURLToPath(new URL('../../services/main.ts', import.meta.url))
const START_TIMEOUT_MS = 60_000

function waitForExit (child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    child.once('exit', () => { clearTimeout(timer); resolve(true) })
  })
}

/**
 * Starts `services/main.ts` in a child process on a free loopback port with a temporary
 * DATA_DIR, no demo feed and no rate limits. Its own process, so the gateway's CPU is not
 * shared with the load generator's event loop.
 */
export async function startEmbeddedPulse (options: { maxConnections: number, env?: Record<string, string> }): Promise<EmbeddedPulse> {
  const dataDir = await mkdtemp(join(tmpdir(), 'pulse-loadtest-'))
  const ingestKey = randomBytes(24).toString('base64url')
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dataDir,
    INGEST_API_KEY: ingestKey,
    DEMO_FEED: '0',
    RATE_LIMIT_INGEST: '0',
    RATE_LIMIT_READ: '0',
    LOG_LEVEL: 'info',
    MAX_CONNECTIONS: String(options.maxConnections),
    ...options.env
  }
  // Embedded means embedded, whatever the operator's shell points at.
  if (options.env?.REDIS_URL === undefined) delete env.REDIS_URL
  if (options.env?.DYNAMODB_ENDPOINT === undefined) delete env.DYNAMODB_ENDPOINT
  // LOADTEST_CPU_PROF=<dir>: the embedded Pulse writes a CPU profile there as it stops.
  const profile = process.env.LOADTEST_CPU_PROF
  const child = spawn(process.execPath, [...(profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`]), '--import', 'tsx', MAIN], {
    env,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const tail: string[] = []
  const remember = (line: string): void => {
    tail.push(line)
    if (tail.length > 20) tail.shift()
  }
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', remember)
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM')
    if (!await waitForExit(child, 10_000)) {
      child.kill('SIGKILL')
      await waitForExit(child, 5000)
    }
    await rm(dataDir, { recursive: true, force: true })
  }
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`embedded Pulse did not start in ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS)
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        remember(line)
        const match = /listening on (http:\/\/[^\s"]+)/.exec(line)
        if (match !== null) { clearTimeout(timer); resolve(match[1] as string) }
      })
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`embedded Pulse exited with ${code}:\n${tail.join('\n')}`)) })
    })
    return { url, ingestKey, pid: child.pid as number, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
