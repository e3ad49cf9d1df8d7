import { css, html, LitElement } from 'lit'
import { customElement, property, query } from 'lit/decorators.js'
import {
  type CandlestickData, CandlestickSeries, ColorType, createChart, type HistogramData, HistogramSeries,
  type IChartApi, type ISeriesApi, type UTCTimestamp
} from 'lightweight-charts'
import type { Bucket } from '../store/model.js'
import { formatScore } from '../util/format.js'
import { base, COLORS } from './theme.js'

/** Bars visible after a switch, about one per 7 px (older ones are a scroll away). */
function visibleBars (width: number): number {
  return Math.max(40, Math.min(160, Math.round(width / 7)))
}

function timeOf (bucket: Bucket): UTCTimestamp {
  return Math.floor(Date.parse(bucket.timestamp) / 1000) as UTCTimestamp
}

function candle (bucket: Bucket): CandlestickData<UTCTimestamp> {
  const up = bucket.close >= bucket.open
  const bar: CandlestickData<UTCTimestamp> = { time: timeOf(bucket), open: bucket.open, high: bucket.high, low: bucket.low, close: bucket.close }
  if (bucket.is_partial) {
    // The bar still moving is drawn paler, so a reader sees it is not final.
    const color = up ? COLORS.upMuted : COLORS.downMuted
    return { ...bar, color, wickColor: color, borderColor: up ? COLORS.up : COLORS.down }
  }
  return bar
}

function countBar (bucket: Bucket): HistogramData<UTCTimestamp> {
  const up = bucket.close >= bucket.open
  return { time: timeOf(bucket), value: bucket.count, color: bucket.is_partial ? 'rgba(139, 152, 165, 0.45)' : up ? 'rgba(86, 180, 233, 0.55)' : 'rgba(230, 159, 0, 0.55)' }
}

/**
 * Candles of the sentiment score with the article count in a pane beneath
 * (TradingView Lightweight Charts, attribution kept). Data is pushed imperatively:
 * `show` replaces the series (a switch), `live` updates one bar.
 * `data-bars` and `data-source` describe what is drawn, for tests.
 */
@customElement('pulse-sentiment-chart')
export class SentimentChart extends LitElement {
  static override styles = [base, css`
    :host { display: block; position: relative; }
    .chart { height: var(--chart-height, clamp(340px, 58vh, 640px)); width: 100%; }
    .empty {
      position: absolute; inset: 0; display: grid; place-items: center;
      color: var(--muted); pointer-events: none; font-size: 0.95rem;
    }
  `]

  /** Read out in place of the canvas. */
  @property() summary = ''
  @query('.chart') private container!: HTMLDivElement
  private chart: IChartApi | undefined
  private candles: ISeriesApi<'Candlestick'> | undefined
  private counts: ISeriesApi<'Histogram'> | undefined
  private shown: { key: string, signature: string } | undefined
  private lastTime = 0
  private pending: { key: string, buckets: readonly Bucket[], source: string } | undefined

  override render (): unknown {
    return html`<div class="chart" role="img" aria-label=${this.summary}></div>
      ${this.dataset.bars === undefined
        ? html`<div class="empty">Loading history…</div>`
        : this.dataset.bars === '0' ? html`<div class="empty">No articles at this resolution yet.</div>` : ''}`
  }

  override firstUpdated (): void {
    this.chart = createChart(this.container, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: 'transparent' },
        textColor: COLORS.muted,
        fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
        attributionLogo: true,
        panes: { separatorColor: COLORS.border, separatorHoverColor: COLORS.border, enableResize: true }
      },
      grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
      rightPriceScale: { borderColor: COLORS.border },
      timeScale: { borderColor: COLORS.border, timeVisible: true, secondsVisible: false, rightOffset: 3 },
      crosshair: { horzLine: { labelBackgroundColor: '#30363d' }, vertLine: { labelBackgroundColor: '#30363d' } }
    })
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: COLORS.up,
      downColor: COLORS.down,
      wickUpColor: COLORS.up,
      wickDownColor: COLORS.down,
      borderVisible: false,
      priceFormat: { type: 'custom', formatter: formatScore, minMove: 0.01 },
      title: 'score'
    })
    this.counts = this.chart.addSeries(HistogramSeries, {
      priceFormat: { type: 'custom', formatter: (n: number) => String(Math.round(n)), minMove: 1 },
      title: 'articles',
      lastValueVisible: true,
      priceLineVisible: false
    }, 1)
    this.chart.panes()[1]?.setStretchFactor(0.28)
    if (this.pending !== undefined) this.show(this.pending.key, this.pending.buckets, this.pending.source)
  }

  override disconnectedCallback (): void {
    super.disconnectedCallback()
    this.chart?.remove()
    this.chart = undefined
  }

  /** Replaces what is drawn (a switch or a reconciled history); no-op when nothing changed. */
  show (key: string, buckets: readonly Bucket[], source: string): void {
    if (this.chart === undefined || this.candles === undefined || this.counts === undefined) {
      this.pending = { key, buckets, source }
      return
    }
    this.pending = undefined
    const last = buckets.at(-1)
    const signature = `${buckets.length}:${buckets[0]?.timestamp ?? ''}:${last?.timestamp ?? ''}:${last?.rev ?? ''}`
    if (this.shown?.key === key && this.shown.signature === signature) return
    const switched = this.shown?.key !== key
    this.shown = { key, signature }
    this.candles.setData(buckets.map(candle))
    this.counts.setData(buckets.map(countBar))
    this.lastTime = last === undefined ? 0 : timeOf(last)
    if (switched && buckets.length > 0) {
      this.chart.timeScale().setVisibleLogicalRange({ from: Math.max(-2, buckets.length - visibleBars(this.clientWidth)), to: buckets.length + 2 })
    }
    this.dataset.bars = String(buckets.length)
    this.dataset.source = source
    this.dataset.key = key
    this.dataset.lastCount = String(last?.count ?? 0)
    this.requestUpdate()
  }

  /** Bucket starts (epoch ms) of the first and last bar on screen; undefined while none is. */
  visibleBars (): { first: number, last: number } | undefined {
    const range = this.chart?.timeScale().getVisibleRange()
    if (range === null || range === undefined) return undefined
    return { first: Number(range.from) * 1000, last: Number(range.to) * 1000 }
  }

  /** Draws one changed bucket of the series on screen. */
  live (key: string, bucket: Bucket): void {
    if (this.shown?.key !== key || this.candles === undefined || this.counts === undefined) return
    const time = timeOf(bucket)
    const historical = time < this.lastTime
    this.candles.update(candle(bucket), historical)
    this.counts.update(countBar(bucket), historical)
    if (!historical) {
      this.lastTime = time
      this.dataset.lastCount = String(bucket.count)
    }
    // The signature no longer matches the store's copy, so the next `show` redraws in full.
    this.shown = { key, signature: 'live' }
    if (this.dataset.bars === '0') {
      this.dataset.bars = '1'
      this.requestUpdate()
    }
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'pulse-sentiment-chart': SentimentChart
  }
}
