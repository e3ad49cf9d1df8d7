import { readFileSync } from 'node:fs'
import type { Result } from 'ioredis'
import type { RedisClient } from './connection.js'

type Arg = string | number | Buffer

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** lua/fold.lua; the first argument is the number of keys. */
    pulseFold (numKeys: number, ...args: Arg[]): Result<unknown, Context>
    /** lua/range.lua */
    pulseRange (numKeys: number, ...args: Arg[]): Result<Array<string | null>, Context>
    /** lua/seed.lua */
    pulseSeed (numKeys: number, ...args: Arg[]): Result<unknown, Context>
    /** lua/mark-clean.lua */
    pulseMarkClean (numKeys: number, ...args: Arg[]): Result<number, Context>
    /** lua/take-dirty.lua */
    pulseTakeDirty (numKeys: number, ...args: Arg[]): Result<string[], Context>
    /** lua/mark-dirty.lua */
    pulseMarkDirty (numKeys: number, ...args: Arg[]): Result<[number, number], Context>
    /** lua/drop-clean-tickers.lua */
    pulseDropCleanTickers (numKeys: number, ...args: Arg[]): Result<number, Context>
    /** lua/hand-back.lua */
    pulseHandBack (numKeys: number, ...args: Arg[]): Result<number, Context>
    /** lua/advance-finalized-mark.lua */
    pulseAdvanceFinalizedMark (numKeys: number, ...args: Arg[]): Result<string[], Context>
    /** lua/backlog-add.lua */
    pulseBacklogAdd (numKeys: number, ...args: Arg[]): Result<[number, number], Context>
    /** lua/backlog-settle.lua */
    pulseBacklogSettle (numKeys: number, ...args: Arg[]): Result<number, Context>
    /** lua/backlog-read.lua */
    pulseBacklogRead (numKeys: number, ...args: Arg[]): Result<[number, number], Context>
    /** lua/ticker-registry.lua */
    pulseTickerRegistry (numKeys: number, ...args: Arg[]): Result<unknown, Context>
  }
}

const SCRIPTS = {
  pulseFold: 'fold',
  pulseSeed: 'seed',
  pulseRange: 'range',
  pulseMarkClean: 'mark-clean',
  pulseMarkDirty: 'mark-dirty',
  pulseTakeDirty: 'take-dirty',
  pulseHandBack: 'hand-back',
  pulseDropCleanTickers: 'drop-clean-tickers',
  pulseAdvanceFinalizedMark: 'advance-finalized-mark'
} as const

const sources = new Map<string, string>()

/** Reads a script beside this module: `lua/` in the source tree and, once copied, in `dist/`. */
function luaSource (file: string): string {
  let source = sources.get(file)
  if (source === undefined) {
    source = readFileSync(new URL(`./lua/${file}.lua`, import.meta.url), 'utf8')
    sources.set(file, source)
  }
  return source
}

/**
 * Defines Pulse's scripts as commands on a connection (ioredis sends EVALSHA and falls
 * back to EVAL once per connection).
 */
export function defineScripts (redis: RedisClient): void {
  for (const [command, file] of Object.entries(SCRIPTS)) {
    redis.defineCommand(command, { lua: luaSource(file) })
  }
}

/** The ingest backlog's scripts (admission control), defined on the ingest queue's connections. */
const BACKLOG_SCRIPTS = {
  pulseBacklogAdd: 'backlog-add',
  pulseBacklogSettle: 'backlog-settle',
  pulseBacklogRead: 'backlog-read'
} as const

const withBacklogScripts = new WeakSet<RedisClient>()

/** Defines the backlog scripts on a connection, once. */
export function defineBacklogScripts (redis: RedisClient): RedisClient {
  if (withBacklogScripts.has(redis)) return redis
  for (const [command, file] of Object.entries(BACKLOG_SCRIPTS)) {
    redis.defineCommand(command, { lua: luaSource(file) })
  }
  withBacklogScripts.add(redis)
  return redis
}

/** Defines the ticker registry's script (lua/ticker-registry.lua) on the registry's connection. */
export function defineTickerRegistryScript (redis: RedisClient): void {
  redis.defineCommand('pulseTickerRegistry', { lua: luaSource('ticker-registry') })
}
