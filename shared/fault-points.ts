import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Fault injection points for Pulse's fault tests.
 *
 * Code that has a fault window worth testing calls {@link faultPoint} with a name at the
 * exact place of the window (`'fold.after'`, `'archive.put'`, …). Nothing happens
 * unless the point is armed: by `PULSE_FAULTS` in the environment, read once when this
 * module loads, or by {@link armFaults} in an in-process test. Arming is refused when
 * `NODE_ENV=production`, so a production process can never be made to fail on purpose.
 *
 * `PULSE_FAULTS` is a comma-separated list of `point=action[@hit]`:
 * - `kill`: the process SIGKILLs itself (a crash: no handlers, no flush);
 * - `throw`: the call rejects with an error naming the point;
 * - `delay:MS`: the call resolves after MS milliseconds;
 * - `hang`: the call never resolves;
 * - `skew:±MS`: a clock read at that point ({@link faultSkew}) is MS milliseconds off, as
 *   the clock of another machine may be (`hot.clock.AAPL=skew:-300000`: the Redis clock the
 *   hot state stamps AAPL's buckets with runs 5 minutes behind).
 *
 * `@N` fires on the Nth time the point is reached only (1-based), `@N+` on the Nth and
 * every later one; without it the action fires every time.
 * Example: `PULSE_FAULTS=fold.after=kill@3,archive.put=delay:70000`.
 */

type Action = { kind: 'kill' } | { kind: 'throw' } | { kind: 'delay', ms: number } | { kind: 'hang' } | { kind: 'skew', ms: number }

interface Armed {
  action: Action
  /** Fire from this hit on (1-based). */
  from: number
  /** Fire until this hit (inclusive); Infinity for every later one. */
  to: number
  hits: number
}

const ENTRY = /^([A-Za-z][A-Za-z0-9.-]*)=(kill|throw|hang|delay:\d{1,9}|skew:-?\d{1,9})(?:@(\d{1,9})(\+)?)?$/

let armed = new Map<string, Armed>()

/** Parses a `PULSE_FAULTS` value; throws naming the first malformed entry. */
export function parseFaults (spec: string): Map<string, Armed> {
  const parsed = new Map<string, Armed>()
  for (const entry of spec.split(',').map((part) => part.trim()).filter((part) => part !== '')) {
    const match = ENTRY.exec(entry)
    if (match === null) throw new Error(`PULSE_FAULTS: '${entry}' is not point=kill|throw|hang|delay:MS|skew:±MS[@N[+]]`)
    const [, point, verb, hit, onwards] = match as unknown as [string, string, string, string | undefined, string | undefined]
    const action: Action = verb.startsWith('delay:')
      ? { kind: 'delay', ms: Number(verb.slice('delay:'.length)) }
      : verb.startsWith('skew:')
        ? { kind: 'skew', ms: Number(verb.slice('skew:'.length)) }
        : { kind: verb as 'kill' | 'throw' | 'hang' }
    const from = hit === undefined ? 1 : Number(hit)
    parsed.set(point, { action, from, to: hit === undefined || onwards !== undefined ? Infinity : from, hits: 0 })
  }
  return parsed
}

/**
 * Arms fault points in this process (tests only); an empty string disarms all.
 * Throws in production and on a malformed spec.
 */
export function armFaults (spec: string): void {
  if (spec.trim() !== '' && process.env.NODE_ENV === 'production') {
    throw new Error('PULSE_FAULTS: fault injection is refused when NODE_ENV=production')
  }
  armed = parseFaults(spec)
}

/** Whether any point is armed (a process can log it at start). */
export function faultsArmed (): string[] {
  return [...armed.keys()]
}

/**
 * The named fault point: returns at once unless armed. Awaited where the window is, so an
 * armed `delay` or `hang` holds exactly that step.
 */
export async function faultPoint (point: string): Promise<void> {
  if (armed.size === 0) return
  const entry = armed.get(point)
  if (entry === undefined) return
  entry.hits++
  if (entry.hits < entry.from || entry.hits > entry.to) return
  switch (entry.action.kind) {
    case 'kill':
      process.kill(process.pid, 'SIGKILL')
      await new Promise(() => {})
      return
    case 'throw':
      throw new Error(`fault injected at ${point}`)
    case 'delay':
      await sleep(entry.action.ms)
      return
    case 'hang':
      await new Promise(() => {})
      break
    case 'skew':
      // A clock fault: read where the clock is ({@link faultSkew}), not awaited.
      break
  }
}

/** How far off the clock read at `point` is: an armed `skew` (every time), else 0. */
export function faultSkew (point: string): number {
  if (armed.size === 0) return 0
  const action = armed.get(point)?.action
  return action?.kind === 'skew' ? action.ms : 0
}

try {
  armFaults(process.env.PULSE_FAULTS ?? '')
} catch {
  // loadConfig reports a malformed or refused PULSE_FAULTS and stops the process (exit 78).
}
