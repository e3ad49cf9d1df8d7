import { css, html, LitElement } from 'lit'
import { customElement, property } from 'lit/decorators.js'
import type { LabelCounts } from '../store/model.js'
import { base } from './theme.js'

/** One row of the distribution: a caption and its counts. */
export interface LabelRow {
  caption: string
  counts: LabelCounts
}

const LABELS = [
  { key: 'positive', text: 'Positive', mark: '+' },
  { key: 'neutral', text: 'Neutral', mark: '•' },
  { key: 'negative', text: 'Negative', mark: '−' }
] as const

/** Positive / neutral / negative shares as stacked bars with numbers beside them. */
@customElement('pulse-label-distribution')
export class LabelDistribution extends LitElement {
  static override styles = [base, css`
    :host { display: block; }
    .row + .row { margin-top: 0.8rem; }
    .caption { font-size: 0.8rem; color: var(--muted); margin-bottom: 0.3rem; display: flex; justify-content: space-between; }
    .bar { display: flex; height: 14px; border-radius: 4px; overflow: hidden; background: var(--panel-2); gap: 2px; }
    .bar span { display: block; height: 100%; }
    .positive { background: var(--up); }
    .neutral { background: var(--neutral); }
    .negative { background: var(--down); background-image: repeating-linear-gradient(135deg, transparent 0 4px, rgba(0,0,0,0.25) 4px 6px); }
    ul { list-style: none; padding: 0; margin: 0.35rem 0 0; display: flex; flex-wrap: wrap; gap: 0.2rem 0.9rem; font-size: 0.82rem; }
    .swatch { display: inline-block; width: 0.7rem; height: 0.7rem; border-radius: 2px; margin-right: 0.3rem; vertical-align: -1px; }
  `]

  @property({ attribute: false }) rows: LabelRow[] = []

  override render (): unknown {
    return html`${this.rows.map((row) => {
      const total = row.counts.positive + row.counts.neutral + row.counts.negative
      const pct = (n: number): number => total === 0 ? 0 : Math.round((n / total) * 100)
      return html`<div class="row">
        <div class="caption"><span>${row.caption}</span><span>${total} articles</span></div>
        <div class="bar" role="img" aria-label=${`${row.caption}: ${LABELS.map((l) => `${pct(row.counts[l.key])} % ${l.text.toLowerCase()}`).join(', ')}`}>
          ${LABELS.map((l) => row.counts[l.key] > 0 ? html`<span class=${l.key} style="flex:${row.counts[l.key]}"></span>` : '')}
        </div>
        <ul aria-hidden="true">
          ${LABELS.map((l) => html`<li><span class="swatch ${l.key}"></span>${l.mark} ${l.text} ${row.counts[l.key]} (${pct(row.counts[l.key])} %)</li>`)}
        </ul>
      </div>`
    })}`
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'pulse-label-distribution': LabelDistribution
  }
}
