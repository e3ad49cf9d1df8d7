import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'

/** The subset of a tap test these helpers need. */
interface Teardown {
  teardown: (fn: () => unknown) => void
}

/** Debian's Chromium, unless `CHROMIUM_PATH` points elsewhere. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Starts headless Chromium, closed with the test. */
export async function launchBrowser (t: Teardown): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
  })
  t.teardown(async () => await browser.close())
  return browser
}

/**
 * A fresh profile (empty IndexedDB and sessionStorage) with one page, closed with the test.
 * The page's CSP is bypassed unless `enforceCsp`: Playwright's string predicates are
 * evaluated in the page, which a strict `script-src` (rightly) forbids.
 */
export async function openPage (t: Teardown, browser: Browser, viewport = { width: 1440, height: 900 }, enforceCsp = false): Promise<{ context: BrowserContext, page: Page, errors: string[] }> {
  const context = await browser.newContext({ viewport, bypassCSP: !enforceCsp })
  t.teardown(async () => await context.close())
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  return { context, page, errors }
}

/** Connection state shown by the indicator. */
export async function connectionState (page: Page): Promise<string | null> {
  return await page.locator('pulse-connection-status').getAttribute('data-state')
}

/** Waits until the indicator shows `state`. */
export async function waitForState (page: Page, state: string, timeout = 15_000): Promise<void> {
  await page.locator(`pulse-connection-status[data-state="${state}"]`).waitFor({ state: 'attached', timeout })
}

/**
 * An in-page expression reaching into the shadow roots: `pulse-app` → `selector`
 * (itself inside one of the app's child components when `inside` is given).
 */
export function deep (selector: string, inside?: string): string {
  const app = "document.querySelector('pulse-app')?.shadowRoot"
  if (inside === undefined) return `${app}?.querySelector(${JSON.stringify(selector)})`
  return `${app}?.querySelector(${JSON.stringify(inside)})?.shadowRoot?.querySelector(${JSON.stringify(selector)})`
}

/** Percentile of a sample (nearest rank). */
export function percentile (values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN
}
