import type { Sink } from '../../services/gateway/streaming/connection.js'
import type { CloseReason, Rendered } from '../../services/gateway/streaming/protocol.js'
import type { Bucket } from '../../shared/timeseries/index.js'

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
