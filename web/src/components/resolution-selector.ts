import { css, html, LitElement } from 'lit'
import { customElement, property } from 'lit/decorators.js'
import { type Resolution, RESOLUTIONS } from '../store/model.js'
import { base } from './theme.js'

/**
 * The eight resolutions as a row of toggle buttons (the page maps keys 1–8 to them).
 * Fires `resolution-select` with the resolution in `detail`.
 */
@customElement('pulse-resolution-selector')
export class ResolutionSelector extends LitElement {
  static override styles = [base, css`
    :host { display: block; }
    [role='toolbar'] { display: flex; flex-wrap: wrap; gap: 4px; }
    button {
      min-width: 2.9rem;
      padding: 0.35rem 0.55rem;
      border: 1px solid var(--border);
      border-radius: 7px;
      background: var(--panel);
      cursor: pointer;
      display: inline-flex;
      align-items: baseline;
      gap: 0.3rem;
    }
    button:hover { background: var(--panel-2); }
    button[aria-pressed='true'] { background: var(--up); border-color: var(--up); color: #0d1117; font-weight: 700; }
    kbd { font: inherit; font-size: 0.7rem; opacity: 0.65; }
  `]

  @property() value: Resolution = '1m'

  override render (): unknown {
    return html`<div role="toolbar" aria-label="Resolution (keys 1 to 8)" @keydown=${this.onKey}>
      ${RESOLUTIONS.map((r, i) => html`<button
        type="button"
        data-resolution=${r}
        aria-pressed=${r === this.value ? 'true' : 'false'}
        aria-keyshortcuts=${String(i + 1)}
        tabindex=${r === this.value ? 0 : -1}
        @click=${() => this.select(r)}
      >${r}<kbd aria-hidden="true">${i + 1}</kbd></button>`)}
    </div>`
  }

  private select (resolution: Resolution): void {
    this.dispatchEvent(new CustomEvent('resolution-select', { detail: resolution, bubbles: true, composed: true }))
  }

  private readonly onKey = (event: KeyboardEvent): void => {
    const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0
    if (step === 0) return
    event.preventDefault()
    const index = RESOLUTIONS.indexOf(this.value)
    const next = RESOLUTIONS[Math.max(0, Math.min(RESOLUTIONS.length - 1, index + step))] as Resolution
    this.select(next)
    this.updateComplete.then(() => {
      this.renderRoot.querySelector<HTMLButtonElement>(`button[data-resolution="${next}"]`)?.focus()
    }).catch(() => {})
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'pulse-resolution-selector': ResolutionSelector
  }
}
