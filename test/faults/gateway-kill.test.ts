import t from 'tap'
import type { ScoredItem } from '../../shared/timeseries/bucket.js'
import { makeItems, postUntilAccepted, startFaultCluster, waitForHot } from '../helpers/fault-cluster.js'
import { type ClientState, SseTestClient, until, WsTestClient } from '../helpers/stream-clients.js'

const TICKERS = ['AAPL', 'MSFT', 'NVDA']
const RESOLUTIONS = ['1m', '10m', '1h']
const QUERY = `tickers=${TICKERS.join(',')}&resolutions=${RESOLUTIONS.join(',')}`

/** `key → rev:count:sum` of every bucket a client holds (the rev is the bucket's, the same on every gateway). */
function digest (state: ClientState): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, b] of [...state.buckets].sort(([a], [c]) => a.localeCompare(c))) out[key] = `${b.rev}:${b.count}:${b.sum.toFixed(9)}`
  return out
}

t.test('a gateway SIGKILLed: its WebSocket and SSE clients resume on the other gateway and end with the state of an undisturbed client', async (t) => {
  const cluster = await startFaultCluster(t, { tickers: TICKERS, gateways: 2, workers: 1 })
  const [victim, survivor] = cluster.gateways
  if (victim === undefined || survivor === undefined) throw new Error('cluster did not start')

  const undisturbed = await WsTestClient.open(survivor.url)
  await undisturbed.subscribe(TICKERS, RESOLUTIONS)
  const ws = await WsTestClient.open(victim.url)
  await ws.subscribe(TICKERS, RESOLUTIONS)
  const sse = new SseTestClient(`${victim.url}/api/v2/stream?${QUERY}`)
  t.teardown(() => { undisturbed.close(); ws.close(); sse.close() })
  await until(() => sse.opens > 0, 10_000, 'SSE open')

  const items = makeItems('g', 6000, TICKERS, Date.now(), 3600)
  const accepted: ScoredItem[] = []
  let wsResumed: WsTestClient | undefined
  let sseResumed: SseTestClient | undefined
  for (let i = 0; i < items.length; i += 200) {
    if (i === 3000) {
      // Resume from a real point in the stream: both clients have had events.
      await until(() => ws.state.lastId !== undefined && sse.state.lastId !== undefined, 15_000, 'first events before the kill')
      await victim.kill('SIGKILL')
      await until(() => ws.closeCode !== undefined, 5000, 'the WebSocket to notice')
      sse.close()
      const wsPositions = { ...ws.state.positions }
      const sseSince = sse.state.lastId
      t.comment(`gateway A SIGKILLed after ${accepted.length} items; WS client at ${Object.keys(wsPositions).length} series positions, SSE client token ${sseSince}`)
      // The same clients reconnect elsewhere, keeping what they already hold.
      wsResumed = await WsTestClient.open(survivor.url)
      for (const [key, b] of ws.state.buckets) wsResumed.state.buckets.set(key, b)
      const reply = await wsResumed.subscribe(TICKERS, RESOLUTIONS, wsPositions)
      const without = TICKERS.flatMap((ticker) => RESOLUTIONS.map((r) => `${ticker}#${r}`)).filter((key) => wsPositions[key] === undefined || wsPositions[key] === '0').sort()
      t.same(reply.not_recovered, without, `every series with a position resumed from it on gateway B (${without.length} had none yet)`)
      const lastEventId = sseSince as string
      sseResumed = new SseTestClient(`${survivor.url}/api/v2/stream?${QUERY}`, {
        fetch: async (input, init) => await fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), 'last-event-id': lastEventId } })
      })
      for (const [key, b] of sse.state.buckets) sseResumed.state.buckets.set(key, b)
      t.teardown(() => { wsResumed?.close(); sseResumed?.close() })
      await until(() => (sseResumed?.opens ?? 0) > 0, 10_000, 'SSE resume open')
    }
    const batch = items.slice(i, i + 200)
    await postUntilAccepted(i < 3000 && i % 400 === 0 ? victim : survivor, batch)
    accepted.push(...batch)
  }
  t.same((await waitForHot(cluster, accepted, 30_000)).problems.slice(0, 5), [], `all ${accepted.length} items folded exactly`)
  if (wsResumed === undefined || sseResumed === undefined) throw new Error('no resume happened')
  const resumedWs = wsResumed
  const resumedSse = sseResumed
  const same = (): boolean => {
    const want = JSON.stringify(digest(undisturbed.state))
    return JSON.stringify(digest(resumedWs.state)) === want && JSON.stringify(digest(resumedSse.state)) === want
  }
  await until(same, 20_000, 'resumed clients to converge').catch(() => {})
  const want = digest(undisturbed.state)
  t.ok(Object.keys(want).length > 100, `the undisturbed client holds ${Object.keys(want).length} buckets`)
  t.same(digest(resumedWs.state), want, 'the WebSocket client resumed with its positions on gateway B holds exactly the undisturbed client\'s state (rev, count, sum of every bucket)')
  t.same(digest(resumedSse.state), want, 'the SSE client resumed with Last-Event-ID on gateway B holds exactly the undisturbed client\'s state')
  t.comment(`resume replay: WS got ${resumedWs.state.events.length} events after resuming, SSE ${resumedSse.state.events.length}`)
})
