import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { freePort } from './free-port.js'

/** The ingest key test processes accept (also exported by ./pulse.js). Kept here, free of tap, so scripts can use it. */
export const TEST_INGEST_KEY = 'test-ingest-key-0123456789'

export { freePort }

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** Anything that can run a function at the end of a test (a node-tap `t`). */
export interface Teardown {
  teardown (fn: () => unknown): void
}

async function exited (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await once(child, 'exit')
}

async function until (check: () => Promise<boolean>, child: ChildProcess, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`)
    if (await check().catch(() => false)) return
    await sleep(50)
  }
  throw new Error(`${what} did not become ready`)
}

/** A child process the test can stop, SIGKILL and start again with the same settings. */
export interface ManagedProcess {
  /** Base URL for processes that serve HTTP. */
  url: string
  port: number
  /** Process id of the running child, if any (to sample its memory). */
  pid: () => number | undefined
  /** Output so far (stdout and stderr), for failure messages. */
  output: () => string
  kill: (signal?: NodeJS.Signals) => Promise<void>
  start: () => Promise<void>
  stop: () => Promise<void>
}

function managed (t: Teardown, name: string, port: number, command: string[], env: Record<string, string>, ready: (child: ChildProcess) => Promise<void>): ManagedProcess {
  let child: ChildProcess | undefined
  let output = ''
  const start = async (): Promise<void> => {
    const spawned = spawn(command[0] as string, command.slice(1), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    child = spawned
    spawned.stdout?.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-20_000) })
    spawned.stderr?.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-20_000) })
    try {
      await ready(spawned)
    } catch (err) {
      spawned.kill('SIGKILL')
      throw new Error(`${name}: ${(err as Error).message}\n${output}`)
    }
  }
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (child === undefined) return
    const current = child
    current.kill(signal)
    await exited(current)
  }
  const stop = async (): Promise<void> => {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const current = child
    current.kill('SIGTERM')
    const timer = setTimeout(() => current.kill('SIGKILL'), 15_000)
    await exited(current)
    clearTimeout(timer)
  }
  t.teardown(async () => await kill('SIGKILL'))
  return { url: `http://127.0.0.1:${port}`, port, pid: () => child?.pid, output: () => output, kill, start, stop }
}

/**
 * dynalite in its own process (so a test can take DynamoDB away), on a free port, started
 * through `scripts/dynalite.mjs` so its store stays bounded as the embedded archive's does.
 */
export async function startDynaliteProcess (t: Teardown): Promise<ManagedProcess & { endpoint: string, dir: string }> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'pulse-dynalite-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const command = [process.execPath, 'scripts/dynalite.mjs', '--port', String(port), '--path', dir, '--createTableMs', '0', '--deleteTableMs', '0', '--updateTableMs', '0']
  const proc = managed(t, 'dynalite', port, command, {}, async (child) => {
    await until(async () => (await fetch(`http://127.0.0.1:${port}`, { method: 'POST' }).then((r) => r.status)) > 0, child, 'dynalite')
  })
  await proc.start()
  return { ...proc, endpoint: `http://127.0.0.1:${port}`, dir }
}

export interface PulseProcessOptions {
  role: 'gateway' | 'worker' | 'all'
  env: Record<string, string>
}

/**
 * A Pulse process as operators run it (`services/main.ts`), on a free port. Ready when
 * `/healthz` answers (gateways) or when it logs that it started (workers).
 */
export async function startPulseProcess (t: Teardown, options: PulseProcessOptions): Promise<ManagedProcess> {
  const port = await freePort()
  const env = {
    PORT: String(port),
    HOST: '127.0.0.1',
    ROLE: options.role,
    INGEST_API_KEY: TEST_INGEST_KEY,
    DEMO_FEED: '0',
    LOG_LEVEL: 'info',
    RATE_LIMIT_INGEST: '0',
    RATE_LIMIT_READ: '0',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...options.env
  }
  const command = [process.execPath, '--import', 'tsx', 'services/main.ts']
  const proc: ManagedProcess = managed(t, `pulse ${options.role}`, port, command, env, async (child) => {
    if (options.role === 'worker') {
      await until(async () => proc.output().includes('Pulse worker'), child, 'worker')
    } else {
      await until(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, child, 'gateway')
    }
  })
  await proc.start()
  return proc
}
