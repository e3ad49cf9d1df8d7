import { html, LitElement } from 'lit'
import { customElement, query, state } from 'lit/decorators.js'
import { pulseMetrics, startSwitch, type SwitchMetric } from '../store/metrics.js'
import { type BucketEvent, isResolution, MAX_SUBSCRIPTIONS, type Resolution, RESOLUTIONS, seriesKey } from '../store/model.js'
import { PulseData, type SeriesChange } from '../store/pulse-data.js'
import { currentBucket, latestPair } from '../store/series-store.js'
import { loadUiState, saveUiState } from '../store/ui-state.js'
import { StreamController } from '../stream/stream-controller.js'
import type { StreamMessage } from '../stream/transport.js'
import { Backoff } from '../util/backoff.js'
import { directionOf } from '../util/direction.js'
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

/**
 * The dashboard shell: owns the selection, the data and the stream, and hands each
 * component what it shows. Live events are applied once per animation frame; the chart
 * is fed imperatively, everything else re-renders at most once per frame.
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

  private readonly data = new PulseData({ base: location.origin, onChange: (changes) => this.onChanges(changes) })
  private readonly events = new FrameBatcher<BucketEvent>((events) => this.data.applyEvents(events))
  private readonly stream = new StreamController(this, {
    base: new URL(location.origin),
    subscription: () => ({ series: this.watchedSeries() }),
    maxSubscriptions: MAX_SUBSCRIPTIONS,
    onMessage: (message) => this.onMessage(message),
    onConnected: () => this.onConnected()
  })

  /** Tickers whose rows are on screen (after the scroll settled). */
  private visible: string[] = []
  private visibleTimer: ReturnType<typeof setTimeout> | undefined
  private renderScheduled = false
  private listDirty = false
  private connections = 0
  private switchToken = 0
  private readonly bootStart = performance.now()

  override connectedCallback (): void {
    super.connectedCallback()
    const ui = loadUiState()
    this.ticker = ui.ticker
    this.resolution = ui.resolution
    this.tickers = ui.tickers
    window.addEventListener('keydown', this.onGlobalKey)
    document.addEventListener('visibilitychange', this.onHide)
    window.addEventListener('pagehide', this.onHide)
    this.boot().catch((err: unknown) => console.error('Pulse: start failed', err))
  }

  override disconnectedCallback (): void {
    super.disconnectedCallback()
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
    this.stream.start()
    const ticker = this.ticker
    if (ticker === undefined) return
    await this.data.revalidate(ticker, this.resolution)
    this.drawSelected('network')
    await this.prefetchSelected()
  }

  /**
   * What the stream watches: the selected ticker at every resolution (any switch is live at
   * once) and the overview resolution of the rows on screen, never more than the gateway
   * allows one connection; rows beyond that stay as last fetched.
   */
  private watchedSeries (): string[] {
    const series = new Set<string>()
    if (this.ticker !== undefined) for (const r of RESOLUTIONS) series.add(seriesKey(this.ticker, r))
    for (const ticker of this.visible) {
      if (series.size >= MAX_SUBSCRIPTIONS) break
      series.add(seriesKey(ticker, OVERVIEW_RESOLUTION))
    }
    return [...series]
  }

  /** The rows on screen changed: once scrolling settles, watch them and fetch their overview. */
  private onVisibleTickers (tickers: string[]): void {
    clearTimeout(this.visibleTimer)
    this.visibleTimer = setTimeout(() => {
      this.visible = tickers
      this.stream.resubscribe()
      // A row scrolled away before its turn is dropped from the queue unsent.
      for (const ticker of tickers) this.data.overview(ticker, () => this.visible.includes(ticker)).catch(() => {})
    }, VISIBLE_DEBOUNCE_MS)
  }

  /** The ticker list, retried with backoff while the server is away (cached data stays on screen). */
  private async loadTickers (): Promise<string[]> {
    const backoff = new Backoff({ baseMs: 500, capMs: 20_000 })
    for (;;) {
      try {
        return await this.data.loadTickers()
      } catch (err) {
        console.warn('Pulse: ticker list unavailable, retrying', err)
        await new Promise((resolve) => setTimeout(resolve, backoff.next()))
      }
    }
  }

  /** All eight resolutions of the selected ticker in memory, so any switch is instant. */
  private async prefetchSelected (): Promise<void> {
    const ticker = this.ticker
    if (ticker === undefined) return
    await this.data.prefetch(RESOLUTIONS.map((r) => [ticker, r] as const))
  }

  private onMessage (message: StreamMessage): void {
    if (message.type === 'subscribed' && typeof message.subscriptions === 'number') {
      const metrics = pulseMetrics()
      metrics.subscriptions = message.subscriptions
      metrics.maxSubscriptions = Math.max(metrics.maxSubscriptions, message.subscriptions)
      // A change published before the gateway had the subscription reached no one: read the series on screen again.
      const tickers = message.tickers
      if (message.op === 'subscribe' && this.ticker !== undefined && Array.isArray(tickers) && tickers.includes(this.ticker)) {
        this.data.revalidate(this.ticker, this.resolution).catch(() => {})
      }
    } else if (message.type === 'partial_bucket' || message.type === 'bucket_update') {
      const event = message as BucketEvent
      if (event.bucket === undefined || !isResolution(event.bucket.resolution)) return
      pulseMetrics().events++
      this.events.push(`${event.bucket.ticker}#${event.bucket.resolution}@${event.bucket.timestamp}`, event)
    } else if (message.type === 'error') {
      console.warn('Pulse: stream error', message)
    }
  }

  private onConnected (): void {
    this.connections++
    // After a gap, reconcile what is on screen with the server as well as resuming the stream.
    if (this.connections > 1) this.prefetchSelected().catch(() => {})
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
    const metric = done(source)
    this.data.revalidate(ticker, resolution, 10_000).catch(() => {})
    return metric
  }

  async selectTicker (ticker: string): Promise<void> {
    if (ticker === this.ticker) return
    this.ticker = ticker
    this.saveUi()
    this.stream.resubscribe()
    if (!this.drawSelected(undefined)) {
      if (await this.data.loadCached(ticker, this.resolution)) this.drawSelected(undefined)
      else if ((await this.data.revalidate(ticker, this.resolution)) !== undefined) this.drawSelected(undefined)
    }
    this.data.revalidate(ticker, this.resolution, 10_000).catch(() => {})
    await this.prefetchSelected()
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
          <pulse-connection-status .state=${this.stream.state} .dataAt=${series?.freshAt ?? 0}></pulse-connection-status>
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
            <pulse-resolution-selector .value=${this.resolution} @resolution-select=${(e: CustomEvent<Resolution>) => { this.selectResolution(e.detail).catch(() => {}) }}></pulse-resolution-selector>
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
