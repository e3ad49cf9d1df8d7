import { html, LitElement } from 'lit'
import { customElement, query, state } from 'lit/decorators.js'
import { Backoff, connect, type PulseClient, type Subscription } from '../../client/src/index.js'
import { PulseController } from '../../client/src/lit.js'
import { observedFetch } from '../store/api.js'
import { ReaderToken } from '../store/reader-token.js'
import { pulseMetrics, startSwitch, type SwitchMetric } from '../store/metrics.js'
import { type Bucket, MAX_SUBSCRIPTIONS, type Resolution, RESOLUTIONS, seriesKey } from '../store/model.js'
import { PulseData, type SeriesChange } from '../store/pulse-data.js'
import { currentBucket, latestPair } from '../store/series-store.js'
import { loadUiState, saveUiState } from '../store/ui-state.js'
import { directionOf } from '../util/direction.js'
import { exportUrl } from '../util/export-url.js'
import { formatScore } from '../util/format.js'
import { FrameBatcher } from '../util/frame-batcher.js'
import './connection-status.js'
import './label-distribution.js'
import type { LabelRow } from './label-distribution.js'
import './partial-bucket.js'
import './resolution-selector.js'
import './sentiment-chart.js'
import type { SentimentChart } from './sentiment-chart.js'
import './ticker-list.js'
import type { TickerRow } from './ticker-list.js'
import { base } from './theme.js'
import { appStyles } from './pulse-app.styles.js'

/** Buckets summed for the "recent" label distribution. */
const RECENT_BUCKETS = 24
/** The list's overview watches this resolution for the rows on screen. */
const OVERVIEW_RESOLUTION: Resolution = '1m'
/** Quiet time after scrolling before the rows on screen are subscribed and fetched. */
const VISIBLE_DEBOUNCE_MS = 250
/** 1m buckets drawn in a row's sparkline. */
const SPARK_BUCKETS = 30
/** How often the ticker list is read again, to follow tickers added and retired at run time. */
const TICKER_LIST_REFRESH_MS = 10_000

/**
 * The dashboard shell: owns the selection, the data and the Pulse client, and hands each
 * component what it shows. The client carries the streams (transport, fallback,
 * reconnection, resume, merge); its bucket states are applied once per animation frame;
 * the chart is fed imperatively, everything else re-renders at most once per frame.
 */
@customElement('pulse-app')
export class PulseApp extends LitElement {
  static override styles = [base, appStyles]

  @state() private tickers: string[] = []
  @state() private ticker: string | undefined
  @state() private resolution: Resolution = '1m'
  /** Bumped when a row's data changed, so the list redraws the rows on screen. */
  @state() private listRevision = 0
  @query('pulse-sentiment-chart') private chart!: SentimentChart

  /** The read credential, where the gateway's reads need one; asked for on a refusal. */
  private readonly readerToken = new ReaderToken()
  private readonly client: PulseClient = connect({ url: location.origin, fetch: observedFetch, token: () => this.readerToken.current() })
  /** The connection state, re-rendering the shell when it changes. */
  private readonly connection = new PulseController(this, this.client)
  private readonly data = new PulseData({ client: this.client, onChange: (changes) => this.onChanges(changes) })
  private readonly events = new FrameBatcher<Bucket>((buckets) => this.data.applyBuckets(buckets))
  /** The selected ticker at every resolution, so any switch is live at once. */
  private selectedSub: Subscription | undefined
  /** The overview resolution of each row on screen. */
  private readonly rowSubs = new Map<string, Subscription>()

  /** Tickers whose rows are on screen (after the scroll settled). */
  private visible: string[] = []
  private visibleTimer: ReturnType<typeof setTimeout> | undefined
  private renderScheduled = false
  private listDirty = false
  private switchToken = 0
  private readonly bootStart = performance.now()
  private tickerListTimer: ReturnType<typeof setInterval> | undefined

  override connectedCallback (): void {
    super.connectedCallback()
    const ui = loadUiState()
    this.ticker = ui.ticker
    this.resolution = ui.resolution
    this.tickers = ui.tickers
    window.addEventListener('keydown', this.onGlobalKey)
    document.addEventListener('visibilitychange', this.onHide)
    window.addEventListener('pagehide', this.onHide)
    // A stream refused for its token (expired, revoked): ask for another; the client's next attempt uses it.
    this.client.on('error', (err) => { this.readerToken.refused(err.code) })
    this.boot().catch((err: unknown) => console.error('Pulse: start failed', err))
  }

  override disconnectedCallback (): void {
    super.disconnectedCallback()
    clearInterval(this.tickerListTimer)
    this.client.close()
    window.removeEventListener('keydown', this.onGlobalKey)
    document.removeEventListener('visibilitychange', this.onHide)
    window.removeEventListener('pagehide', this.onHide)
  }

  /** Cache first, then the ticker list and the stream, then history in the background. */
  private async boot (): Promise<void> {
    if (this.ticker !== undefined) {
      await this.updateComplete
      if (await this.data.loadCached(this.ticker, this.resolution)) this.drawSelected('idb')
    }
    const tickers = await this.loadTickers()
    this.tickers = tickers
    if (this.ticker === undefined || !tickers.includes(this.ticker)) this.ticker = tickers[0]
    this.saveUi()
    this.tickerListTimer ??= setInterval(() => { this.followTickerList().catch(() => {}) }, TICKER_LIST_REFRESH_MS)
    const ticker = this.ticker
    if (ticker === undefined) return
    this.watchSelected()
    await this.data.loadCachedAll(RESOLUTIONS.map((r) => [ticker, r] as const))
  }

  /**
   * Watches the selected ticker at every resolution, its whole history first: the client
   * hands out the snapshot, then every change, across reconnections (resumed, or read
   * afresh when a series was not recovered).
   */
  private watchSelected (): void {
    this.selectedSub?.close()
    const ticker = this.ticker
    if (ticker === undefined) return
    const sub = this.client.subscribe(ticker, RESOLUTIONS, this.onBucket)
    sub.on('snapshot', (t, resolution) => {
      // The snapshot's buckets are in the frame batcher: into memory first, then kept as a whole history.
      this.events.flushNow()
      this.data.markHistory(t, resolution)
      if (resolution === this.resolution && t === this.ticker) this.drawSelected('network')
    })
    sub.on('error', (err) => console.warn(`Pulse: cannot watch ${ticker}`, err))
    this.selectedSub = sub
    this.countSubscriptions()
  }

  /**
   * Watches the overview resolution of the rows on screen (live states only: the overview
   * window is read through the throttle), never past the gateway's limit per connection
   * with the selected ticker's eight; rows beyond that stay as last fetched.
   */
  private watchRows (): void {
    const wanted = new Set<string>()
    for (const ticker of this.visible) {
      if (wanted.size + RESOLUTIONS.length >= MAX_SUBSCRIPTIONS) break
      if (ticker !== this.ticker) wanted.add(ticker)
    }
    for (const [ticker, sub] of this.rowSubs) {
      if (wanted.has(ticker)) continue
      sub.close()
      this.rowSubs.delete(ticker)
    }
    for (const ticker of wanted) {
      if (this.rowSubs.has(ticker)) continue
      const sub = this.client.subscribe(ticker, OVERVIEW_RESOLUTION, this.onBucket, { snapshot: false })
      sub.on('error', (err) => console.warn(`Pulse: cannot watch ${ticker}`, err))
      this.rowSubs.set(ticker, sub)
    }
    this.countSubscriptions()
  }

  private countSubscriptions (): void {
    const metrics = pulseMetrics()
    metrics.subscriptions = this.client.watching
    metrics.maxSubscriptions = Math.max(metrics.maxSubscriptions, metrics.subscriptions)
  }

  /** Every new state of a watched bucket, the snapshots' first: applied once per frame. */
  private readonly onBucket = (bucket: Bucket): void => {
    pulseMetrics().events++
    this.events.push(`${bucket.ticker}#${bucket.resolution}@${bucket.timestamp}`, bucket)
  }

  /** The rows on screen changed: once scrolling settles, watch them and fetch their overview. */
  private onVisibleTickers (tickers: string[]): void {
    clearTimeout(this.visibleTimer)
    this.visibleTimer = setTimeout(() => {
      this.visible = tickers
      this.watchRows()
      // A row scrolled away before its turn is dropped from the queue unsent.
      for (const ticker of tickers) this.data.overview(ticker, () => this.visible.includes(ticker)).catch(() => {})
    }, VISIBLE_DEBOUNCE_MS)
  }

  /** The ticker list, retried with backoff while the server is away (cached data stays on screen). */
  /**
   * Re-reads the ticker list, so tickers added and retired at run time (the admin API)
   * appear and leave without a reload. A selected ticker that was retired stays on screen:
   * its history is still readable.
   */
  private async followTickerList (): Promise<void> {
    if (document.visibilityState === 'hidden') return
    const tickers = await this.data.loadTickers('low')
    if (tickers.length === this.tickers.length && tickers.every((ticker, i) => ticker === this.tickers[i])) return
    this.tickers = tickers
    if (this.ticker === undefined && tickers[0] !== undefined) {
      this.ticker = tickers[0]
      this.watchSelected()
    }
    this.saveUi()
  }

  private async loadTickers (): Promise<string[]> {
    const backoff = new Backoff({ baseMs: 500, capMs: 20_000 })
    for (;;) {
      try {
        return await this.data.loadTickers()
      } catch (err) {
        // Reads need a token: ask for one, and try again at once with it.
        if (this.readerToken.refused((err as { code?: string }).code)) continue
        console.warn('Pulse: ticker list unavailable, retrying', err)
        await new Promise((resolve) => setTimeout(resolve, backoff.next()))
      }
    }
  }

  private onChanges (changes: readonly SeriesChange[]): void {
    const key = this.ticker === undefined ? undefined : seriesKey(this.ticker, this.resolution)
    let redraw = false
    for (const change of changes) {
      if (change.resolution === OVERVIEW_RESOLUTION) this.listDirty = true
      if (change.key !== key) continue
      if (change.kind === 'last' && change.bucket !== undefined) this.chart?.live(change.key, change.bucket)
      else redraw = true
    }
    if (redraw) this.drawSelected(undefined)
    this.scheduleRender()
  }

  private scheduleRender (): void {
    if (this.renderScheduled) return
    this.renderScheduled = true
    requestAnimationFrame(() => {
      this.renderScheduled = false
      if (this.listDirty) this.listRevision++
      this.listDirty = false
      this.requestUpdate()
    })
  }

  /** Pushes the selected series from memory to the chart. */
  private drawSelected (source: 'idb' | 'network' | undefined): boolean {
    if (this.ticker === undefined || this.chart === null || this.chart === undefined) return false
    const series = this.data.store.get(this.ticker, this.resolution)
    // An empty series the server confirmed is an answer too; an empty cached one is not.
    if (series === undefined || (series.buckets.length === 0 && series.historyAt === 0)) return false
    this.chart.show(series.key, series.buckets, source ?? series.origin)
    const metrics = pulseMetrics()
    if (metrics.firstDraw === undefined && source !== undefined) {
      metrics.firstDraw = { source, at: Math.round(performance.now() - this.bootStart), bars: series.buckets.length }
    }
    return true
  }

  /**
   * Switches resolution: drawn from memory in the same task when held, from IndexedDB
   * when not, from the network only as a last resort — then reconciled in the background.
   */
  async selectResolution (resolution: Resolution): Promise<SwitchMetric | undefined> {
    if (resolution === this.resolution || this.ticker === undefined) return undefined
    const done = startSwitch(resolution)
    const token = ++this.switchToken
    const ticker = this.ticker
    this.resolution = resolution
    this.saveUi()
    let source: SwitchMetric['source'] = 'memory'
    if (!this.drawSelected(undefined)) {
      source = await this.data.loadCached(ticker, resolution) ? 'idb' : 'network'
      if (source === 'network') await this.data.revalidate(ticker, resolution)
      if (token !== this.switchToken) return undefined
      this.drawSelected(undefined)
    }
    await this.updateComplete
    return done(source)
  }

  async selectTicker (ticker: string): Promise<void> {
    if (ticker === this.ticker) return
    this.ticker = ticker
    this.saveUi()
    this.watchSelected()
    this.watchRows()
    if (!this.drawSelected(undefined) && await this.data.loadCached(ticker, this.resolution)) this.drawSelected(undefined)
    await this.data.loadCachedAll(RESOLUTIONS.map((r) => [ticker, r] as const))
  }

  private saveUi (): void {
    saveUiState({ ticker: this.ticker, resolution: this.resolution, tickers: this.tickers })
  }

  private readonly onGlobalKey = (event: KeyboardEvent): void => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return
    const target = event.composedPath()[0]
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return
    if (event.key === '/') {
      event.preventDefault()
      this.renderRoot.querySelector('pulse-ticker-list')?.focusSearch()
      return
    }
    const index = Number(event.key) - 1
    const resolution = RESOLUTIONS[index]
    if (!Number.isInteger(index) || resolution === undefined) return
    event.preventDefault()
    this.selectResolution(resolution).catch(() => {})
  }

  private readonly onHide = (): void => {
    if (document.visibilityState === 'hidden') this.data.persistNow().catch(() => {})
  }

  /** One row of the list: the ticker's overview series, built only for the rows on screen. */
  private readonly rowOf = (ticker: string): TickerRow => {
    const series = this.data.store.get(ticker, OVERVIEW_RESOLUTION)
    const { latest, previous } = latestPair(series)
    const spark = (series?.buckets ?? []).slice(-SPARK_BUCKETS).map((b) => b.avg)
    if (latest === undefined) return { ticker, spark }
    return { ticker, spark, avg: latest.avg, count: latest.count, direction: directionOf(latest, previous) ?? 'flat' }
  }

  private labelRows (): LabelRow[] {
    const series = this.ticker === undefined ? undefined : this.data.store.get(this.ticker, this.resolution)
    const current = currentBucket(series)
    const recent = { positive: 0, neutral: 0, negative: 0 }
    for (const b of (series?.buckets ?? []).slice(-RECENT_BUCKETS)) {
      recent.positive += b.label_counts.positive
      recent.neutral += b.label_counts.neutral
      recent.negative += b.label_counts.negative
    }
    return [
      { caption: `Current ${this.resolution} bucket`, counts: current?.label_counts ?? { positive: 0, neutral: 0, negative: 0 } },
      { caption: `Last ${RECENT_BUCKETS} buckets`, counts: recent }
    ]
  }

  /** Points the download link at the range on screen just before it is used (the chart scrolls without re-rendering the shell). */
  private readonly aimDownload = (event: Event): void => {
    if (this.ticker === undefined) return
    (event.currentTarget as HTMLAnchorElement).href = exportUrl(this.ticker, this.resolution, this.chart?.visibleBars())
  }

  /**
   * A click on "Download CSV": the link downloads by itself where reads are open; with a
   * reader token the export is fetched with it (a link cannot carry the header, and a token
   * in a URL ends up in logs) and saved from memory.
   */
  private readonly download = (event: Event): void => {
    this.aimDownload(event)
    const token = this.readerToken.current()
    if (token === undefined) return
    event.preventDefault()
    this.downloadWithToken((event.currentTarget as HTMLAnchorElement).href, token).catch(() => {})
  }

  private async downloadWithToken (url: string, token: string): Promise<void> {
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
    if (!res.ok) {
      const body = await res.json().catch(() => undefined) as { error?: { code?: string } } | undefined
      this.readerToken.refused(body?.error?.code)
      return
    }
    const name = /filename="?([^";]+)"?/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'pulse.csv'
    const href = URL.createObjectURL(await res.blob())
    const save = document.createElement('a')
    save.href = href
    save.download = name
    save.click()
    setTimeout(() => URL.revokeObjectURL(href), 60_000)
  }

  /** "Download CSV": the export of the selected series, aimed at the range on screen when used. */
  private downloadLink (): unknown {
    if (this.ticker === undefined) return ''
    return html`<a class="download" download href=${exportUrl(this.ticker, this.resolution)}
      title="The buckets on screen as CSV (the bucket in progress is left out)"
      @pointerenter=${this.aimDownload} @focus=${this.aimDownload} @click=${this.download}>Download CSV</a>`
  }

  override render (): unknown {
    pulseMetrics().renders++
    const series = this.ticker === undefined ? undefined : this.data.store.get(this.ticker, this.resolution)
    const { latest } = latestPair(series)
    const current = currentBucket(series)
    const summary = this.ticker === undefined
      ? 'No ticker selected'
      : `${this.ticker} sentiment at ${this.resolution} resolution: ${series?.buckets.length ?? 0} buckets` +
        (latest === undefined ? '' : `, latest average ${formatScore(latest.avg)} from ${latest.count} articles`)
    return html`
      <div class="shell">
        <header>
          <div class="brand"><span class="logo" aria-hidden="true">◆</span><h1>Pulse</h1><span class="tag">news sentiment, live</span></div>
          <pulse-connection-status .state=${this.connection.state} .dataAt=${series?.freshAt ?? 0}></pulse-connection-status>
        </header>
        <nav class="panel tickers" aria-label="Tickers">
          <h2 id="tickers-h">Tickers · latest ${OVERVIEW_RESOLUTION}</h2>
          <pulse-ticker-list .tickers=${this.tickers} .rowOf=${this.rowOf} .revision=${this.listRevision} .selected=${this.ticker}
            @ticker-select=${(e: CustomEvent<string>) => { this.selectTicker(e.detail).catch(() => {}) }}
            @visible-tickers=${(e: CustomEvent<string[]>) => this.onVisibleTickers(e.detail)}></pulse-ticker-list>
        </nav>
        <main class="panel chart-panel">
          <div class="toolbar">
            <div class="title">
              <h1 class="symbol">${this.ticker ?? '—'}</h1>
              ${latest === undefined ? '' : html`<span class="headline ${latest.avg > 0.05 ? 'up' : latest.avg < -0.05 ? 'down' : 'flat'}">${formatScore(latest.avg)}</span>`}
              <span class="sub">sentiment score · ${this.resolution} buckets · UTC</span>
            </div>
            <div class="actions">
              <pulse-resolution-selector .value=${this.resolution} @resolution-select=${(e: CustomEvent<Resolution>) => { this.selectResolution(e.detail).catch(() => {}) }}></pulse-resolution-selector>
              ${this.downloadLink()}
            </div>
          </div>
          <pulse-sentiment-chart .summary=${summary}></pulse-sentiment-chart>
          <p class="legend"><span class="up">▲ blue</span>: score closed higher than it opened · <span class="down">▼ orange</span>: lower · pale: bucket in progress · bars beneath: articles per bucket</p>
        </main>
        <aside class="side">
          <section class="panel" aria-label="Current bucket"><pulse-partial-bucket .bucket=${current} .resolution=${this.resolution}></pulse-partial-bucket></section>
          <section class="panel" aria-labelledby="labels-h"><h2 id="labels-h">Label distribution</h2><pulse-label-distribution .rows=${this.labelRows()}></pulse-label-distribution></section>
        </aside>
      </div>
    `
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'pulse-app': PulseApp
  }
}
