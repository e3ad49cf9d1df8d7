import { readFileSync } from 'node:fs'
import type { Result } from 'ioredis'
import type { RedisClient } from './connection.js'

type Arg = string | number | Buffer

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** lua/fold.lua; the first argument is the number of keys. */
    pulseFold (numKeys: number, ...args: Arg[]): Result<unknown, Context>
    /** lua/seed.lua */
    pulseSeed (numKeys: number, ...args: Arg[]): Result<unknown, Context>
    /** lua/mark-clean.lua */
    pulseMarkClean (numKeys: number, ...args: Arg[]): Result<number, Context>
    /** lua/take-dirty.lua */
    pulseTakeDirty (numKeys: number, ...args: Arg[]): Result<string[], Context>
    /** lua/mark-dirty.lua */
    pulseMarkDirty (numKeys: number, ...args: Arg[]): Result<number, Context>
    /** lua/hand-back.lua */
    pulseHandBack (numKeys: number, ...args: Arg[]): Result<number, Context>
    /** lua/advance-finalized-mark.lua */
    pulseAdvanceFinalizedMark (numKeys: number, ...args: Arg[]): Result<string[], Context>
  }
}

const SCRIPTS = {
  pulseFold: 'fold',
  pulseSeed: 'seed',
  pulseMarkClean: 'mark-clean',
  pulseMarkDirty: 'mark-dirty',
  pulseTakeDirty: 'take-dirty',
  pulseHandBack: 'hand-back',
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
