import { access, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { labelFor, type ScoredItem } from '../../shared/timeseries/bucket.js'
import { firstCopies } from '../helpers/items.js'
import { postOnce } from '../helpers/fault-cluster.js'
import { startPulseProcess } from '../helpers/processes.js'

const TICKERS = ['AAPL', 'MSFT']

function alive (pid: number | undefined): boolean {
  if (pid === undefined) return false
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function until<T> (check: () => Promise<T | undefined> | T | undefined, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

function makeItems (prefix: string, count: number, now: number): ScoredItem[] {
  return Array.from({ length: count }, (_, i) => {
    const score = Math.round(Math.cos(i) * 80) / 100
    return { id: `${prefix}${i}`, ticker: TICKERS[i % TICKERS.length] as string, ts: now - i * 100, score, label: labelFor(score), source: 'tiingo' }
  })
}

/** Each ticker's 24 h bucket as the process serves it: count and sum. */
async function totals (url: string): Promise<Record<string, { count: number, sum: number }>> {
  const result: Record<string, { count: number, sum: number }> = {}
  for (const ticker of TICKERS) {
    const body = await (await fetch(`${url}/api/v2/timeseries/${ticker}?resolution=24h`)).json() as { partial_bucket: { count: number, sum: number } | null }
    result[ticker] = { count: body.partial_bucket?.count ?? 0, sum: Math.round((body.partial_bucket?.sum ?? 0) * 1e6) / 1e6 }
  }
  return result
}

function expectedTotals (items: readonly ScoredItem[]): Record<string, { count: number, sum: number }> {
  const result: Record<string, { count: number, sum: number }> = {}
  for (const ticker of TICKERS) {
    const mine = firstCopies(items).filter((item) => item.ticker === ticker)
    result[ticker] = { count: mine.length, sum: Math.round(mine.reduce((sum, item) => sum + item.score, 0) * 1e6) / 1e6 }
  }
  return result
}

t.test('embedded Pulse killed after a flush wrote the archive and before the journal checkpoint: after a restart nothing is lost or counted twice', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pulse-checkpoint-crash-'))
  t.teardown(async () => await rm(dataDir, { recursive: true, force: true }))
  const env = { DATA_DIR: dataDir, TICKERS: TICKERS.join(',') }
  // The second checkpoint dies: the first leaves saved dedupe slices and a checkpoint to restart from.
  const doomed = await startPulseProcess(t, { role: 'all', env: { ...env, PULSE_FAULTS: 'journal.checkpoint=kill@2' } })
  const now = Date.now()
  const first = makeItems('a', 40, now)
  t.equal(await postOnce(doomed, first), 202, 'first batch accepted')
  await until(async () => await access(join(dataDir, 'journal', 'checkpoint')).then(() => true, () => undefined), 20_000, 'the first checkpoint')

  const second = makeItems('b', 40, now)
  // Copies of first-batch items with other content: the first copy counts.
  const copies = first.slice(0, 4).map((item) => ({ ...item, score: -0.5, label: labelFor(-0.5) }))
  t.equal(await postOnce(doomed, [...second, ...copies]), 202, 'second batch accepted')
  const pid = doomed.pid()
  await until(() => alive(pid) ? undefined : true, 30_000, 'the kill at the second checkpoint')
  t.comment('killed between the archive write and the checkpoint')

  const restarted = await startPulseProcess(t, { role: 'all', env })
  const accepted = [...first, ...second, ...copies]
  const expected = expectedTotals(accepted)
  const afterRestart = await until(async () => {
    const seen = await totals(restarted.url)
    return JSON.stringify(seen) === JSON.stringify(expected) ? seen : undefined
  }, 30_000, 'the replay').catch(async () => await totals(restarted.url))
  t.same(afterRestart, expected, 'every bucket equals the fold of the first copy of each accepted item')

  // Copies resent after the restart, of both batches, then one new item to know they were folded.
  const resent = [first[5], second[6], first[7]].map((item) => ({ ...item as ScoredItem, score: 0.9, label: labelFor(0.9) }))
  const sentinel = makeItems('c', 1, now)
  t.equal(await postOnce(restarted, [...resent, ...sentinel]), 202, 'resent copies accepted')
  const final = [...accepted, ...resent, ...sentinel]
  const settled = await until(async () => {
    const seen = await totals(restarted.url)
    return JSON.stringify(seen) === JSON.stringify(expectedTotals(final)) ? seen : undefined
  }, 30_000, 'the resend folded').catch(async () => await totals(restarted.url))
  t.same(settled, expectedTotals(final), 'copies resent after the restart are refused by dedupe; only the new item counts')
})
