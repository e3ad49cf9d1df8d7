import { css, html, LitElement, nothing, svg } from 'lit'
import { customElement, property } from 'lit/decorators.js'
import { repeat } from 'lit/directives/repeat.js'
import { type Direction, DIRECTION_TEXT } from '../util/direction.js'
import { formatScore } from '../util/format.js'
import { base } from './theme.js'

/** What one row of the ticker list shows. */
export interface TickerRow {
  ticker: string
  avg?: number
  count?: number
  direction?: Direction
  /** Recent bucket averages, oldest first, for the sparkline. */
  spark: number[]
}

/** Colour of a score by its sign (direction has its own arrow and word). */
function toneOf (avg: number): 'up' | 'down' | 'flat' {
  return avg > 0.05 ? 'up' : avg < -0.05 ? 'down' : 'flat'
}

function sparkline (values: readonly number[]): unknown {
  if (values.length < 2) return nothing
  const w = 64
  const h = 22
  const points = values.map((v, i) => `${((i / (values.length - 1)) * w).toFixed(1)},${(((1 - v) / 2) * h).toFixed(1)}`).join(' ')
  return svg`<svg class="spark" viewBox="0 0 ${w} ${h}" width=${w} height=${h} aria-hidden="true">
    <line x1="0" x2=${w} y1=${h / 2} y2=${h / 2} class="zero"></line>
    <polyline points=${points}></polyline>
  </svg>`
}

/**
 * Every ticker with its live sentiment at the selected resolution. A single tab stop;
 * arrow keys, Home and End move between tickers, Enter or a click selects.
 * Fires `ticker-select` with the ticker in `detail`.
 */
@customElement('pulse-ticker-list')
export class TickerList extends LitElement {
  static override styles = [base, css`
    :host { display: block; }
    ul { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 4px; }
    button {
      width: 100%;
      display: grid;
      grid-template-columns: 4.2rem 1fr auto;
      grid-template-rows: auto auto;
      column-gap: 0.5rem;
      align-items: center;
      padding: 0.5rem 0.65rem;
      background: transparent;
      border: 1px solid transparent;
      border-radius: 8px;
      text-align: left;
      cursor: pointer;
    }
    button:hover { background: var(--panel-2); }
    button[aria-current='true'] { background: var(--panel-2); border-color: var(--up); }
    .sym { font-weight: 700; letter-spacing: 0.02em; }
    .avg { font-weight: 600; justify-self: end; }
    .dir { grid-column: 1 / 3; font-size: 0.8rem; }
    .count { grid-column: 3; justify-self: end; font-size: 0.8rem; color: var(--muted); white-space: nowrap; }
    .spark { justify-self: end; grid-row: 1; grid-column: 2; }
    .spark polyline { fill: none; stroke: var(--muted); stroke-width: 1.5; }
    .spark .zero { stroke: var(--border); stroke-dasharray: 2 2; }
    .pending { color: var(--muted); }
    @media (max-width: 720px) {
      ul { flex-direction: row; overflow-x: auto; padding-bottom: 4px; scroll-snap-type: x proximity; }
      li { flex: 0 0 auto; scroll-snap-align: start; }
      button { width: 10.5rem; grid-template-columns: 3.8rem 1fr auto; }
      .spark { display: none; }
    }
  `]

  @property({ attribute: false }) rows: TickerRow[] = []
  @property() selected: string | undefined
  /** The resolution the figures are for, read out to screen readers. */
  @property() resolution = ''

  override render (): unknown {
    return html`<ul role="list" aria-label="Tickers">
      ${repeat(this.rows, (row) => row.ticker, (row) => this.renderRow(row))}
    </ul>`
  }

  private renderRow (row: TickerRow): unknown {
    const current = row.ticker === this.selected
    const dir = row.direction === undefined ? undefined : DIRECTION_TEXT[row.direction]
    const label = row.avg === undefined
      ? `${row.ticker}, no articles yet`
      : `${row.ticker}, average sentiment ${formatScore(row.avg)}, ${dir?.word ?? ''}, ${row.count ?? 0} articles in the latest ${this.resolution} bucket`
    return html`<li>
      <button
        type="button"
        data-ticker=${row.ticker}
        data-count=${row.count ?? 0}
        aria-current=${current ? 'true' : 'false'}
        aria-label=${label}
        tabindex=${current || (this.selected === undefined && row === this.rows[0]) ? 0 : -1}
        @click=${() => this.select(row.ticker)}
        @keydown=${(e: KeyboardEvent) => this.onKey(e, row.ticker)}
      >
        <span class="sym">${row.ticker}</span>
        ${sparkline(row.spark)}
        <span class="avg ${row.avg === undefined ? 'pending' : toneOf(row.avg)}">${row.avg === undefined ? '—' : formatScore(row.avg)}</span>
        <span class="dir ${row.direction ?? 'pending'}">${dir === undefined ? 'waiting for data' : html`${dir.arrow} ${dir.word}`}</span>
        <span class="count">${row.count === undefined ? '' : `${row.count} art.`}</span>
      </button>
    </li>`
  }

  private select (ticker: string): void {
    this.dispatchEvent(new CustomEvent('ticker-select', { detail: ticker, bubbles: true, composed: true }))
  }

  private onKey (event: KeyboardEvent, ticker: string): void {
    const index = this.rows.findIndex((row) => row.ticker === ticker)
    let next: number | undefined
    if (event.key === 'ArrowDown' || event.key === 'ArrowRight') next = Math.min(this.rows.length - 1, index + 1)
    else if (event.key === 'ArrowUp' || event.key === 'ArrowLeft') next = Math.max(0, index - 1)
    else if (event.key === 'Home') next = 0
    else if (event.key === 'End') next = this.rows.length - 1
    if (next === undefined) return
    event.preventDefault()
    const target = this.rows[next]
    if (target === undefined) return
    this.select(target.ticker)
    this.updateComplete.then(() => {
      this.renderRoot.querySelector<HTMLButtonElement>(`button[data-ticker="${target.ticker}"]`)?.focus()
    }).catch(() => {})
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'pulse-ticker-list': TickerList
  }
}
