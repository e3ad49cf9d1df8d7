import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './free-port.js'

const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server'

export interface RedisServerOptions {
  /** Persist with an append-only file, so a restart keeps the data. */
  aof?: boolean
  /** Start as a replica of the Redis on this 127.0.0.1 port (`--replicaof`). */
  replicaOf?: number
}

/** A `redis-server` child process on a free loopback port, owned by one test. */
export interface RedisServer {
  url: string
  port: number
  /** Shuts down and removes the data directory. Safe to call twice. */
  stop (): Promise<void>
  /** SIGKILL, as a crash would. */
  kill (): Promise<void>
  /** Starts again on the same port; `empty` first deletes what was persisted. */
  restart (options?: { empty?: boolean }): Promise<void>
}

/** Anything that can run a function at the end of a test (a node-tap `t`). */
export interface Teardown {
  teardown (fn: () => unknown): void
}

async function answersPing (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let reply = ''
    socket.setTimeout(500)
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk.toString()
      if (reply.includes('\r\n')) {
        socket.destroy()
        resolve(reply.startsWith('+PONG'))
      }
    })
    socket.on('error', () => resolve(false))
    socket.on('timeout', () => { socket.destroy(); resolve(false) })
  })
}

async function waitForPing (port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited with ${child.exitCode}`)
    if (await answersPing(port)) return
    await sleep(25)
  }
  throw new Error(`redis-server on ${port} did not answer PING`)
}

async function exited (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await once(child, 'exit')
}

/**
 * Starts a real `redis-server` on a free 127.0.0.1 port (never 6379) with its own
 * temporary directory, and registers its shutdown with `t` at once.
 */
export async function startRedisServer (t: Teardown, options: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'pulse-redis-'))
  let port = await freePort()
  let child: ChildProcess | undefined
  let stopped = false

  const launch = async (): Promise<void> => {
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', options.aof === true ? 'yes' : 'no', '--appendfsync', 'always', '--loglevel', 'warning',
      ...(options.replicaOf === undefined ? [] : ['--replicaof', '127.0.0.1', String(options.replicaOf)])
    ]
    const proc = spawn(REDIS_SERVER, args, { stdio: 'ignore' })
    child = proc
    await waitForPing(port, proc)
  }

  const server: RedisServer = {
    get url () { return `redis://127.0.0.1:${port}` },
    get port () { return port },
    async stop () {
      if (stopped) return
      stopped = true
      if (child !== undefined) {
        child.kill('SIGTERM')
        await exited(child)
      }
      await rm(dir, { recursive: true, force: true })
    },
    async kill () {
      if (child === undefined) return
      child.kill('SIGKILL')
      await exited(child)
    },
    async restart (restartOptions = {}) {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        await exited(child)
      }
      if (restartOptions.empty === true) {
        await rm(dir, { recursive: true, force: true })
        await mkdir(dir, { recursive: true })
      }
      await launch()
    }
  }
  t.teardown(() => server.stop())

  for (let attempt = 0; ; attempt++) {
    try {
      await launch()
      return server
    } catch (error) {
      // Another process may have taken the port between the probe and the bind.
      if (attempt >= 2) throw error
      port = await freePort()
    }
  }
}
