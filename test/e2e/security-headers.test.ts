import { existsSync, statSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startTestPulse } from '../helpers/pulse.js'
import { launchBrowser, openPage, waitForState } from './browser.js'

// `npm test` builds the dashboard before the tests (building here too would race dashboard.test.ts).
if (!existsSync(fileURLToPath(new URL('../../web/dist/index.html', import.meta.url)))) throw new Error('web/dist is missing: run npm run build:web')

t.test('the dashboard carries security headers and runs under its CSP without a single violation', async (t) => {
  const p = await startTestPulse(t)
  const now = Date.now()
  const items = ['AAPL', 'MSFT'].flatMap((ticker) => Array.from({ length: 30 }, (_, i) => ({
    id: `csp-${ticker}-${i}`, ticker, timestamp: new Date(now - i * 97_000).toISOString(), score: ((i % 7) - 3) / 3, source: ['tiingo', 'finnhub'][i % 2]
  })))
  t.equal((await p.post(items)).status, 202, 'history for two tickers ingested')

  const res = await fetch(`${p.url}/`)
  const csp = res.headers.get('content-security-policy') ?? ''
  t.match(csp, /script-src 'self'/, 'CSP: scripts from this origin only')
  t.match(csp, /script-src-attr 'none'/, 'CSP: no inline event handlers')
  t.notMatch(/script-src [^;]*/.exec(csp)?.[0] ?? '', /unsafe/, 'CSP: no unsafe-inline or unsafe-eval for scripts')
  t.match(csp, /object-src 'none'/, 'CSP: no plugins')
  t.match(csp, /frame-ancestors 'none'/, 'CSP: no framing')
  t.equal(res.headers.get('x-content-type-options'), 'nosniff', 'X-Content-Type-Options: nosniff')
  t.equal(res.headers.get('x-frame-options'), 'DENY', 'X-Frame-Options: DENY')
  t.ok(res.headers.get('referrer-policy'), 'Referrer-Policy set')
  t.equal(res.headers.get('x-powered-by'), null, 'no X-Powered-By')

  // dashboard.test.ts may be rebuilding web/dist right now: wait until the bundle is still.
  const bundle = fileURLToPath(new URL('../../web/dist/main.js', import.meta.url))
  for (let i = 0; i < 60 && (!existsSync(bundle) || Date.now() - statSync(bundle).mtimeMs < 3000); i++) await sleep(500)
  const browser = await launchBrowser(t)
  const { page, errors } = await openPage(t, browser, undefined, true)
  const violations: string[] = []
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text())
  })
  await page.addInitScript(`
    window.__cspViolations = []
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber))
  `)
  await page.goto(`${p.url}/`)
  await waitForState(page, 'live')
  // Every resolution renders the chart, the partial bucket and the label bars.
  for (const key of ['1', '2', '3', '4', '5', '6', '7', '8']) {
    await page.keyboard.press(key)
    await page.waitForTimeout(150)
  }
  await p.post([{ id: 'csp-live', ticker: 'AAPL', timestamp: new Date().toISOString(), score: 0.5, source: 'tiingo' }])
  await page.waitForTimeout(800)
  const inPage = await page.evaluate('window.__cspViolations') as string[]
  t.comment(`dashboard loaded with CSP: ${csp}`)
  t.same([...inPage, ...violations], [], 'no CSP violation reported by Chromium (securitypolicyviolation events and console)')
  t.same(errors, [], 'no page errors')
})
