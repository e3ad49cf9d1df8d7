import t from 'tap'
import { makeItems, postOnce, startFaultCluster, waitForArchive } from '../helpers/fault-cluster.js'

const TICKERS = ['AAPL', 'MSFT', 'NVDA']

interface History {
  status: number
  body: { buckets: Array<{ count: number }>, partial_bucket: { count: number } | null, archive_unavailable?: boolean } | undefined
}

/** A history read that gives up after `ms`: `undefined` when the gateway did not answer by then. */
async function readHistory (url: string, ms: number): Promise<History | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(ms) })
    return { status: res.status, body: res.status === 200 ? await res.json() as History['body'] : (await res.arrayBuffer(), undefined) }
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') return undefined
    throw err
  }
}

/**
 * DynamoDB paused (dynalite SIGSTOPped: connections stay open, nothing answers; on loopback
 * the SDK has no timeouts). A history read of a series no client read before must answer
 * at once from the hot state and say older buckets may be missing — never wait on the
 * archive. After the archive returns, the whole range is served again.
 */
t.test('history answers from the hot state while DynamoDB is paused, and says so', async (t) => {
  const cluster = await startFaultCluster(t, { tickers: TICKERS, gateways: 1, workers: 1 })
  const [gateway] = cluster.gateways
  if (gateway === undefined) throw new Error('cluster did not start')
  const now = Date.now()
  const items = makeItems('p', 300, TICKERS, now, 1200)
  t.equal(await postOnce(gateway, items), 202)
  t.same((await waitForArchive(cluster, items, 30_000)).problems.slice(0, 5), [], 'DynamoDB holds everything before the pause')

  const pid = (cluster.dynalite as { pid: () => number | undefined }).pid()
  if (pid === undefined) throw new Error('dynalite has no pid')
  process.kill(pid, 'SIGSTOP')
  t.teardown(() => { try { process.kill(pid, 'SIGCONT') } catch {} })

  for (const ticker of ['MSFT', 'NVDA']) {
    // Generous: the gateway's archive deadline is 2 s; before, such a read never answered.
    const read = await readHistory(`${gateway.url}/api/v2/timeseries/${ticker}?resolution=1m`, 8000)
    t.ok(read !== undefined, `${ticker}: the gateway answered while DynamoDB was paused`)
    if (read === undefined) continue
    t.equal(read.status, 200, `${ticker}: from the hot state`)
    t.equal(read.body?.archive_unavailable, true, `${ticker}: the answer says older buckets may be missing`)
    const served = [...(read.body?.buckets ?? []), ...(read.body?.partial_bucket == null ? [] : [read.body.partial_bucket])].reduce((n, b) => n + b.count, 0)
    t.equal(served, items.filter((item) => item.ticker === ticker).length, `${ticker}: the recent buckets the hot state holds are all there`)
  }

  process.kill(pid, 'SIGCONT')
  let whole: History | undefined
  for (let attempt = 0; attempt < 60 && whole?.body?.archive_unavailable !== false; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    whole = await readHistory(`${gateway.url}/api/v2/timeseries/MSFT?resolution=1m`, 8000)
  }
  t.equal(whole?.body?.archive_unavailable, false, 'after DynamoDB returned, the whole range is served again')
})
