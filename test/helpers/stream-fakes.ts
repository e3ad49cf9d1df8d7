import type { Sink } from '../../services/gateway/streaming/connection-actor.js'
import type { Due, FlushScheduler } from '../../services/gateway/streaming/flush-scheduler.js'
import type { SeriesCache, SeriesListener } from '../../services/gateway/series-cache.js'
import type { CloseReason, Rendered } from '../../services/gateway/streaming/protocol.js'
import type { Bucket } from '../../shared/timeseries/bucket.js'

/** The start of the current minute, the 1m bucket the streaming unit tests send. */
export const START = Math.floor(Date.now() / 60_000) * 60_000

/** An AAPL 1m bucket at `start` whose `count` is its `rev`, so a test can tell states apart. */
export function testBucket (start: number, rev: number, lastUpdated = Date.now()): Bucket {
  const key = { ts: start, id: 'a' }
  return {
    ticker: 'AAPL',
    resolution: '1m',
    start,
    open: 0,
    high: 0,
    low: 0,
    close: 0,
    count: rev,
    sum: 0,
    label_counts: { positive: 0, neutral: rev, negative: 0 },
    sources: ['test'],
    first: key,
    last: key,
    rev,
    last_updated: lastUpdated
  }
}

/** A sink that records its writes (one entry per write) and whose buffered bytes the test sets. */
export interface RecordingSink extends Sink {
  writes: Rendered[][]
  buffered: number
  closedWith: CloseReason | undefined
}

export function recordingSink (): RecordingSink {
  const sink: RecordingSink = {
    writes: [],
    buffered: 0,
    closedWith: undefined,
    writeOne: (rendered) => { sink.writes.push([rendered]) },
    write: (events) => { sink.writes.push([...events]) },
    bufferedAmount: () => sink.buffered,
    keepAlive: () => {},
    close: (reason) => { sink.closedWith = reason }
  }
  return sink
}

export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** A scheduler the test drives: it remembers who asked to be woken, and when. */
export function manualScheduler (): FlushScheduler & { due: Map<Due, number> } {
  const due = new Map<Due, number>()
  return { due, schedule: (target: Due, at: number) => { due.set(target, Math.min(at, due.get(target) ?? Infinity)) } } as unknown as FlushScheduler & { due: Map<Due, number> }
}

/** Wakes every target of `scheduler` due at `now`. */
export function wakeDue (scheduler: { due: Map<Due, number> }, now: number): void {
  for (const [target, at] of [...scheduler.due]) {
    if (at > now) continue
    scheduler.due.delete(target)
    target.runDue(now)
  }
}

/** A series cache that only hands its one watcher to the test, which feeds it events. */
export function feedableCache (): { cache: SeriesCache, feed: SeriesListener } {
  let listener: SeriesListener | undefined
  const cache = { watch: async (_ticker: string, _resolution: string, watcher: SeriesListener) => { listener = watcher; return () => {} } } as unknown as SeriesCache
  return { cache, feed: (event, position) => listener?.(event, position) }
}
