import { virtualize, virtualizerRef, type VirtualizerHostElement } from '@lit-labs/virtualizer/virtualize.js'
import { css, html, LitElement, nothing, type PropertyValues, svg } from 'lit'
import { customElement, property, query, state } from 'lit/decorators.js'
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

/** Rows moved by PageUp / PageDown. */
const PAGE = 10

/** Colour of a score by its sign (direction has its own arrow and word). */
function toneOf (avg: number): 'up' | 'down' | 'flat' {
  return avg > 0.05 ? 'up' : avg < -0.05 ? 'down' : 'flat'
}

function sparkline (values: readonly number[]): unknown {
  if (values.length < 2) return html`<span class="spark"></span>`
  const w = 64
  const h = 22
  const points = values.map((v, i) => `${((i / (values.length - 1)) * w).toFixed(1)},${(((1 - v) / 2) * h).toFixed(1)}`).join(' ')
  return svg`<svg class="spark" viewBox="0 0 ${w} ${h}" width=${w} height=${h} aria-hidden="true">
    <line x1="0" x2=${w} y1=${h / 2} y2=${h / 2} class="zero"></line>
    <polyline points=${points}></polyline>
  </svg>`
}

/** Tickers matching a search: those starting with it first, then those containing it, each in list order. */
export function searchTickers (tickers: readonly string[], text: string): string[] {
  const needle = text.trim().toUpperCase()
  if (needle === '') return [...tickers]
  const starts: string[] = []
  const contains: string[] = []
  for (const ticker of tickers) {
    if (ticker.startsWith(needle)) starts.push(ticker)
    else if (ticker.includes(needle)) contains.push(ticker)
  }
  return starts.concat(contains)
}

/**
 * The ticker list, virtualised so a thousand tickers cost only the rows on screen.
 * A search box filters by symbol; the list is a listbox driven from the keyboard:
 * arrows, PageUp/PageDown, Home and End move the active row, Enter selects it, and typing
 * a letter while the list has focus starts a search. Rows are built on demand by `rowOf`
 * (bump `revision` to redraw the visible ones). Fires `ticker-select` (the ticker in
 * `detail`) and `visible-tickers` (the tickers on screen, after every scroll or filter).
 */
@customElement('pulse-ticker-list')
export class TickerList extends LitElement {
  static override styles = [base, css`
    :host { display: flex; flex-direction: column; min-height: 0; }
    .search { display: flex; gap: 0.4rem; align-items: center; margin: 0 0.3rem 0.5rem; }
    input {
      flex: 1; min-width: 0; font: inherit; color: var(--text); background: var(--panel-2);
      border: 1px solid var(--border); border-radius: 8px; padding: 0.4rem 0.6rem;
    }
    .matches { font-size: 0.75rem; color: var(--muted); white-space: nowrap; }
    .options { flex: none; height: var(--list-height, 60vh); overflow: auto; border-radius: 8px; }
    .options:focus-visible { outline-offset: -3px; }
    .row {
      box-sizing: border-box;
      width: 100%;
      height: 52px;
      display: grid;
      grid-template-columns: 4.6rem 1fr auto;
      grid-template-rows: auto auto;
      column-gap: 0.5rem;
      align-items: center;
      padding: 0.3rem 0.65rem;
      border: 1px solid transparent;
      border-radius: 8px;
      cursor: pointer;
    }
    .row:hover { background: var(--panel-2); }
    .row.active { border-color: var(--muted); }
    .row[aria-selected='true'] { background: var(--panel-2); border-color: var(--up); }
    .sym { font-weight: 700; letter-spacing: 0.02em; overflow: hidden; text-overflow: ellipsis; }
    .avg { font-weight: 600; justify-self: end; }
    .dir { grid-column: 1 / 3; font-size: 0.8rem; white-space: nowrap; }
    .count { grid-column: 3; justify-self: end; font-size: 0.8rem; color: var(--muted); white-space: nowrap; }
    .spark { justify-self: end; grid-row: 1; grid-column: 2; }
    .spark polyline { fill: none; stroke: var(--muted); stroke-width: 1.5; }
    .spark .zero { stroke: var(--border); stroke-dasharray: 2 2; }
    .pending { color: var(--muted); }
    .none { color: var(--muted); padding: 0.6rem; }
  `]

  /** Every configured ticker, in order. */
  @property({ attribute: false }) tickers: string[] = []
  /** Builds the row of one ticker from the page's data. */
  @property({ attribute: false }) rowOf: (ticker: string) => TickerRow = (ticker) => ({ ticker, spark: [] })
  /** Changed by the page when row data changed, so the rows on screen are drawn again. */
  @property({ type: Number }) revision = 0
  @property() selected: string | undefined

  @state() private search = ''
  /** Index (in the filtered list) of the row the keyboard is on. */
  @state() private active = 0
  @query('.options') private options!: HTMLElement & VirtualizerHostElement
  @query('input') private input!: HTMLInputElement

  private filtered: string[] = []
  private filteredFor: { tickers: string[], search: string } | undefined
  private visible: string[] = []

  /** The tickers the search leaves, recomputed only when the list or the search changed. */
  private shown (): string[] {
    if (this.filteredFor?.tickers !== this.tickers || this.filteredFor.search !== this.search) {
      this.filtered = searchTickers(this.tickers, this.search)
      this.filteredFor = { tickers: this.tickers, search: this.search }
    }
    return this.filtered
  }

  override willUpdate (changed: PropertyValues<this>): void {
    // Arriving selections (a reload, the first ticker) bring the keyboard to them.
    if ((changed.has('selected') || changed.has('tickers')) && this.selected !== undefined) {
      const at = this.shown().indexOf(this.selected)
      if (at >= 0) this.active = at
    }
  }

  override updated (changed: PropertyValues<this>): void {
    if (changed.has('tickers') && this.selected !== undefined) this.reveal(this.active, 'center')
  }

  override render (): unknown {
    const items = this.shown()
    const active = items[this.active]
    const activeId = active === undefined ? nothing : `opt-${active}`
    return html`
      <div class="search">
        <input type="search" placeholder=${`Search ${this.tickers.length.toLocaleString('en')} tickers`}
          aria-label="Search tickers" role="combobox" aria-expanded="true" aria-controls="ticker-options"
          aria-autocomplete="list" aria-activedescendant=${activeId} autocomplete="off" spellcheck="false"
          .value=${this.search} @input=${this.onInput} @keydown=${this.onKey}>
        <span class="matches" aria-live="polite">${items.length === this.tickers.length ? '' : `${items.length} match${items.length === 1 ? '' : 'es'}`}</span>
      </div>
      ${items.length === 0 ? html`<div class="none">No ticker matches “${this.search}”.</div>` : nothing}
      <div class="options" id="ticker-options" role="listbox" aria-label="Tickers" tabindex="0"
        aria-activedescendant=${activeId} @keydown=${this.onKey}
        @visibilityChanged=${(e: Event & { first: number, last: number }) => this.onVisible(e.first, e.last)}>
        ${virtualize({ items, scroller: true, keyFunction: (ticker: string) => ticker, renderItem: (ticker: string, index: number) => this.renderRow(ticker, index, items.length) })}
      </div>`
  }

  private renderRow (ticker: string, index: number, size: number): ReturnType<typeof html> {
    const row = this.rowOf(ticker)
    const selected = ticker === this.selected
    const dir = row.direction === undefined ? undefined : DIRECTION_TEXT[row.direction]
    const label = row.avg === undefined
      ? `${ticker}, no articles in the last minutes`
      : `${ticker}, average sentiment ${formatScore(row.avg)}, ${dir?.word ?? ''}, ${row.count ?? 0} articles in the latest minute`
    return html`<div class="row ${index === this.active ? 'active' : ''}" role="option" id=${`opt-${ticker}`}
        data-ticker=${ticker} data-count=${row.count ?? 0} aria-selected=${selected ? 'true' : 'false'}
        aria-setsize=${size} aria-posinset=${index + 1} aria-label=${label}
        @click=${() => this.choose(index)}>
      <span class="sym">${ticker}</span>
      ${sparkline(row.spark)}
      <span class="avg ${row.avg === undefined ? 'pending' : toneOf(row.avg)}">${row.avg === undefined ? '—' : formatScore(row.avg)}</span>
      <span class="dir ${row.direction ?? 'pending'}">${dir === undefined ? 'quiet' : html`${dir.arrow} ${dir.word}`}</span>
      <span class="count">${row.count === undefined ? '' : `${row.count} art.`}</span>
    </div>`
  }

  /** Moves keyboard focus to the search box (the `/` shortcut). */
  focusSearch (): void {
    this.input?.focus()
    this.input?.select()
  }

  private choose (index: number): void {
    const ticker = this.shown()[index]
    if (ticker === undefined) return
    this.active = index
    this.dispatchEvent(new CustomEvent('ticker-select', { detail: ticker, bubbles: true, composed: true }))
  }

  private reveal (index: number, block: ScrollLogicalPosition = 'nearest'): void {
    this.updateComplete.then(() => {
      this.options?.[virtualizerRef]?.element(index)?.scrollIntoView({ block })
    }).catch(() => {})
  }

  private onVisible (first: number, last: number): void {
    const items = this.shown()
    const visible = first < 0 ? [] : items.slice(first, last + 1)
    if (visible.length === this.visible.length && visible.every((t, i) => t === this.visible[i])) return
    this.visible = visible
    this.dispatchEvent(new CustomEvent('visible-tickers', { detail: visible, bubbles: true, composed: true }))
  }

  private readonly onInput = (event: Event): void => {
    // Symbols are upper case; the box shows what is searched for.
    this.search = (event.target as HTMLInputElement).value.toUpperCase()
    this.active = 0
    this.reveal(0, 'start')
    // A filter that shows fewer rows than fit may not scroll at all: report what is on screen now.
    this.updateComplete.then(() => {
      const items = this.shown()
      if (items.length <= 1) this.onVisible(items.length === 0 ? -1 : 0, items.length - 1)
    }).catch(() => {})
  }

  private readonly onKey = (event: KeyboardEvent): void => {
    if (event.ctrlKey || event.metaKey || event.altKey) return
    const items = this.shown()
    const last = items.length - 1
    const inSearch = event.target === this.input
    let next: number | undefined
    switch (event.key) {
      case 'ArrowDown': next = Math.min(last, this.active + 1); break
      case 'ArrowUp': next = Math.max(0, this.active - 1); break
      case 'PageDown': next = Math.min(last, this.active + PAGE); break
      case 'PageUp': next = Math.max(0, this.active - PAGE); break
      case 'Home': if (!inSearch) next = 0; break
      case 'End': if (!inSearch) next = last; break
      case 'Enter':
      case ' ':
        if (event.key === ' ' && inSearch) return
        event.preventDefault()
        this.choose(this.active)
        return
      case 'Escape':
        if (this.search === '') return
        event.preventDefault()
        this.search = ''
        this.active = Math.max(0, this.selected === undefined ? 0 : this.tickers.indexOf(this.selected))
        this.reveal(this.active, 'center')
        return
      default:
        // Type-to-search: a letter typed on the list goes to the search box (digits stay resolution keys).
        if (!inSearch && /^[a-zA-Z.]$/.test(event.key)) {
          event.preventDefault()
          this.search = event.key.toUpperCase()
          this.active = 0
          this.reveal(0, 'start')
          this.updateComplete.then(() => this.input?.focus()).catch(() => {})
        }
        return
    }
    if (next === undefined || last < 0) return
    event.preventDefault()
    this.active = next
    this.reveal(next)
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'pulse-ticker-list': TickerList
  }
}
