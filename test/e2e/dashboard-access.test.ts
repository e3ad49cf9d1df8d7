import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Page } from 'playwright-core'
import { hsToken, TEST_JWT_SECRET } from '../helpers/jwt.js'
import { startTestPulse } from '../helpers/pulse.js'
import { launchBrowser, openPage, waitForState } from './browser.js'

/*
 * The dashboard in every read mode: open reads never ask; with READ_TOKEN or JWTs it asks
 * for a token after the first refusal (or takes one from #token=), then shows what the
 * token may read and streams it live.
 */

const root = fileURLToPath(new URL('../../', import.meta.url))
execFileSync(process.execPath, [join(root, 'web/build.mjs')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
const browser = await launchBrowser(t)

async function rows (page: Page): Promise<string[]> {
  return await page.locator('pulse-ticker-list [role="option"][data-ticker]').evaluateAll((r) => r.map((row) => row.getAttribute('data-ticker') as string))
}

t.test('open reads: no prompt', async (t) => {
  const p = await startTestPulse(t, { TICKERS: 'AAPL,MSFT' })
  const { page, errors } = await openPage(t, browser)
  const prompts: string[] = []
  page.on('dialog', (dialog) => { prompts.push(dialog.message()); dialog.dismiss().catch(() => {}) })
  await page.goto(p.url)
  await page.locator('pulse-ticker-list [role="option"][data-ticker="MSFT"]').waitFor()
  await waitForState(page, 'live')
  t.same(prompts, [], 'nobody is asked for a token')
  t.same(errors, [])
})

t.test('READ_TOKEN: asked once, then live', async (t) => {
  const p = await startTestPulse(t, { TICKERS: 'AAPL,MSFT', READ_TOKEN: 'dash-read-token-0123' })
  const { page, errors } = await openPage(t, browser)
  const prompts: string[] = []
  page.on('dialog', (dialog) => { prompts.push(dialog.message()); dialog.accept('dash-read-token-0123').catch(() => {}) })
  await page.goto(p.url)
  await page.locator('pulse-ticker-list [role="option"][data-ticker="MSFT"]').waitFor()
  await waitForState(page, 'live')
  t.equal(prompts.length, 1, `asked once: ${prompts.join(' | ')}`)
  t.same(errors, [])
})

t.test('JWT in #token=: the entitled tickers only, live, the token gone from the address', async (t) => {
  const p = await startTestPulse(t, { TICKERS: 'AAPL,MSFT,TECH.A', JWT_SECRET: TEST_JWT_SECRET })
  const token = await hsToken({ sub: 'dash', tickers: ['AAPL', 'TECH.*'], expiresIn: 600 })
  const { page, errors } = await openPage(t, browser)
  const prompts: string[] = []
  page.on('dialog', (dialog) => { prompts.push(dialog.message()); dialog.dismiss().catch(() => {}) })
  await page.goto(`${p.url}/#token=${token}`)
  await page.locator('pulse-ticker-list [role="option"][data-ticker="TECH.A"]').waitFor()
  t.same(await rows(page), ['AAPL', 'TECH.A'], 'the list shows what the token may read')
  await waitForState(page, 'live')
  t.notOk(page.url().includes('token'), 'the token left the address bar')
  t.same(prompts, [], 'no prompt')
  t.same(errors, [])
})
