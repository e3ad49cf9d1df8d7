import { css, html, LitElement } from 'lit'
import { customElement, property } from 'lit/decorators.js'
import { type Bucket, bucketStartMs, type Resolution, RESOLUTION_MS } from '../store/model.js'
import { formatBucketTime, formatRemaining, formatScore } from '../util/format.js'
import { base } from './theme.js'

/**
 * The bucket in progress: its figures as they change and how far through it we are.
 * Progress follows the local clock each second, so it moves between events too.
 */
@customElement('pulse-partial-bucket')
export class PartialBucket extends LitElement {
  static override styles = [base, css`
    :host { display: block; }
    .head { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: baseline; column-gap: 0.5rem; }
    .head h2 { white-space: nowrap; }
    .window { color: var(--muted); font-size: 0.85rem; white-space: nowrap; }
    .track { height: 8px; border-radius: 4px; background: var(--panel-2); overflow: hidden; margin: 0.5rem 0 0.25rem; }
    .fill { height: 100%; background: linear-gradient(90deg, var(--up), #8fd0f5); transition: width 0.9s linear; }
    .progress-text { display: flex; justify-content: space-between; font-size: 0.8rem; color: var(--muted); }
    .avg { font-size: 2rem; font-weight: 700; margin: 0.5rem 0 0.1rem; line-height: 1.1; }
    dl { display: grid; grid-template-columns: repeat(4, 1fr); gap: 0.35rem 0.5rem; margin: 0.6rem 0 0; }
    dt { font-size: 0.72rem; color: var(--muted); text-transform: uppercase; letter-spacing: 0.05em; }
    dd { margin: 0; font-weight: 600; }
    .sources { margin-top: 0.6rem; font-size: 0.8rem; color: var(--muted); overflow-wrap: anywhere; }
    .empty { color: var(--muted); margin: 0.6rem 0 0; }
    @media (prefers-reduced-motion: reduce) { .fill { transition: none; } }
  `]

  /** The current bucket, or undefined when it has no items yet. */
  @property({ attribute: false }) bucket: Bucket | undefined
  @property() resolution: Resolution = '1m'
  private timer: ReturnType<typeof setInterval> | undefined

  override connectedCallback (): void {
    super.connectedCallback()
    this.timer = setInterval(() => this.requestUpdate(), 1000)
  }

  override disconnectedCallback (): void {
    super.disconnectedCallback()
    clearInterval(this.timer)
  }

  override render (): unknown {
    const now = Date.now()
    const duration = RESOLUTION_MS[this.resolution]
    const start = bucketStartMs(now, this.resolution)
    const pct = Math.min(100, ((now - start) / duration) * 100)
    const daily = this.resolution === '24h'
    const from = formatBucketTime(new Date(start).toISOString(), daily)
    const to = formatBucketTime(new Date(start + duration).toISOString(), daily)
    const b = this.bucket
    const tone = b === undefined ? 'flat' : b.avg > 0.05 ? 'up' : b.avg < -0.05 ? 'down' : 'flat'
    return html`
      <div class="head">
        <h2>Current ${this.resolution} bucket</h2>
        <span class="window">${from}–${to} UTC</span>
      </div>
      <div class="track" role="progressbar" aria-label="Bucket progress" aria-valuemin="0" aria-valuemax="100" aria-valuenow=${Math.round(pct)}>
        <div class="fill" style="width:${pct.toFixed(2)}%"></div>
      </div>
      <div class="progress-text"><span>${Math.floor(pct)} % elapsed</span><span>${formatRemaining(start + duration - now)} left</span></div>
      ${b === undefined
        ? html`<p class="empty">No articles in this bucket yet.</p>`
        : html`
          <div class="avg ${tone}" data-count=${b.count}>${formatScore(b.avg)}</div>
          <div class="window">average sentiment · <span class="count">${b.count}</span> ${b.count === 1 ? 'article' : 'articles'}</div>
          <dl>
            <div><dt>Open</dt><dd>${formatScore(b.open)}</dd></div>
            <div><dt>High</dt><dd>${formatScore(b.high)}</dd></div>
            <div><dt>Low</dt><dd>${formatScore(b.low)}</dd></div>
            <div><dt>Close</dt><dd>${formatScore(b.close)}</dd></div>
          </dl>
          <div class="sources">Sources: ${b.sources.join(', ')}${b.sources_truncated ? ' (the first 64)' : ''}</div>`}
    `
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'pulse-partial-bucket': PartialBucket
  }
}
