import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { freePort } from './free-port.js'

/*
 * One `redis-server` and one dynalite per test file (each file is its own process), started
 * on first use and shared by the tests of that file. Tests keep apart by key prefix and table
 * (`PULSE_ENV`, see {@link uniqueEnv}) and queue name, never by flushing. A test that stops,
 * kills or restarts Redis or DynamoDB starts its own with `startRedisServer` or
 * `startDynaliteProcess` instead.
 */

const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server'
const DYNALITE_CLI = fileURLToPath(new URL('../../node_modules/dynalite/cli.js', import.meta.url))

/** A service shared by the tests of this file. */
export interface SharedRedis {
  url: string
  port: number
}

export interface SharedDynalite {
  endpoint: string
  port: number
}

const children: ChildProcess[] = []
const dirs: string[] = []

function stopAll (): void {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
}
// After the last test of the file, and at any exit, so no server outlives its test process.
t.teardown(stopAll)
process.once('exit', stopAll)

async function waitUntil (check: () => Promise<boolean>, child: ChildProcess, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`)
    if (await check().catch(() => false)) return
    await sleep(25)
  }
  throw new Error(`${what} did not answer within ${ms} ms`)
}

async function redisAnswers (port: number): Promise<boolean> {
  const { createConnection } = await import('node:net')
  return await new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    socket.setTimeout(500)
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => { socket.destroy(); resolve(chunk.toString().startsWith('+PONG')) })
    socket.on('error', () => resolve(false))
    socket.on('timeout', () => { socket.destroy(); resolve(false) })
  })
}

let redis: Promise<SharedRedis> | undefined
let dynalite: Promise<SharedDynalite> | undefined

/** This file's `redis-server` (no persistence), started on first call. */
export async function sharedRedisServer (): Promise<SharedRedis> {
  redis ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pulse-redis-shared-'))
    dirs.push(dir)
    for (let attempt = 0; ; attempt++) {
      const port = await freePort()
      const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], { stdio: 'ignore' })
      children.push(child)
      try {
        await waitUntil(async () => await redisAnswers(port), child, `redis-server on ${port}`)
        return { url: `redis://127.0.0.1:${port}`, port }
      } catch (error) {
        // Another process may have taken the port between the probe and the bind.
        child.kill('SIGKILL')
        if (attempt >= 2) throw error
      }
    }
  })()
  return await redis
}

/** This file's dynalite (in memory, its own process), started on first call. */
export async function sharedDynalite (): Promise<SharedDynalite> {
  dynalite ??= (async () => {
    for (let attempt = 0; ; attempt++) {
      const port = await freePort()
      const child = spawn(process.execPath, [DYNALITE_CLI, '--port', String(port), '--createTableMs', '0', '--deleteTableMs', '0', '--updateTableMs', '0'], { stdio: 'ignore' })
      children.push(child)
      try {
        await waitUntil(async () => (await fetch(`http://127.0.0.1:${port}`, { method: 'POST' })).status > 0, child, `dynalite on ${port}`)
        return { endpoint: `http://127.0.0.1:${port}`, port }
      } catch (error) {
        child.kill('SIGKILL')
        if (attempt >= 2) throw error
      }
    }
  })()
  return await dynalite
}

/** A fresh `PULSE_ENV` (key prefix, queue names and DynamoDB table), so tests sharing a service keep apart. */
export function uniqueEnv (prefix = 't'): string {
  return `${prefix}${randomBytes(4).toString('hex')}`
}
