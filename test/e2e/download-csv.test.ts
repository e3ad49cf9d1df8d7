import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'csv-parse/sync'
import t from 'tap'
import { eventually, startTestPulse } from '../helpers/pulse.js'
import { launchBrowser, openPage } from './browser.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const MINUTE = 60_000

execFileSync(process.execPath, [join(root, 'web/build.mjs')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
const browser = await launchBrowser(t)

t.test('"Download CSV" saves the buckets of the series on screen', async (t) => {
  const p = await startTestPulse(t)
  const ticker = p.pulse.config.tickers[0] as string
  const current = Date.now() - (Date.now() % MINUTE)
  const items = Array.from({ length: 20 }, (_, i) => ({ id: `dl-${i}`, ticker, timestamp: new Date(current - (i + 1) * MINUTE + 5000).toISOString(), score: (i % 5) / 5 - 0.4, source: 'tiingo' }))
  t.equal((await p.post(items)).status, 202)
  const history = await eventually(async () => {
    const { body } = await p.get(`/api/v2/timeseries/${ticker}?resolution=1m`)
    return body.buckets?.length === 20 ? body : undefined
  }, 10_000, 'twenty buckets in history')

  const { page, errors } = await openPage(t, browser)
  await page.goto(p.url)
  await page.locator('pulse-sentiment-chart[data-bars="20"]').waitFor()
  const link = page.locator('pulse-app a.download')
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()])
  t.match(download.suggestedFilename(), new RegExp(`^${ticker}_1m_\\d{8}T\\d{6}Z_\\d{8}T\\d{6}Z\\.csv$`), 'named after the series and range')
  const href = await link.getAttribute('href') ?? ''
  t.match(href, /start=.*&end=|end=.*start=/, 'the link names the range on screen')
  const rows = parse(await readFile(await download.path(), 'utf8'), { columns: true }) as Array<Record<string, string>>
  t.same(rows.map((row) => row.timestamp), history.buckets.map((b: { timestamp: string }) => b.timestamp), 'the file holds the buckets on screen')
  t.same(errors, [], 'no page errors')
})

t.test('with a reader token, "Download CSV" fetches the export with it', async (t) => {
  const p = await startTestPulse(t, { READ_TOKEN: 'csv-read-token-0123' })
  const ticker = p.pulse.config.tickers[0] as string
  const current = Date.now() - (Date.now() % MINUTE)
  const items = Array.from({ length: 5 }, (_, i) => ({ id: `tk-${i}`, ticker, timestamp: new Date(current - (i + 1) * MINUTE + 5000).toISOString(), score: 0.2, source: 'tiingo' }))
  t.equal((await p.post(items)).status, 202)
  const { page, errors } = await openPage(t, browser)
  // The token comes in the address's fragment, as a deployment hands it over.
  await page.goto(`${p.url}/#token=csv-read-token-0123`)
  await page.locator('pulse-sentiment-chart[data-bars="5"]').waitFor()
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('pulse-app a.download').click()])
  t.match(download.suggestedFilename(), new RegExp(`^${ticker}_1m_.*\\.csv$`), 'named as the gateway names it')
  const rows = parse(await readFile(await download.path(), 'utf8'), { columns: true }) as Array<Record<string, string>>
  t.equal(rows.length, 5, 'the file holds the five buckets: the export was read with the token')
  t.same(errors, [], 'no page errors')
})
