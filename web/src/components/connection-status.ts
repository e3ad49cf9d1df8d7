import { css, html, LitElement } from 'lit'
import { customElement, property } from 'lit/decorators.js'
import type { ConnectionState } from '../../client/src/index.js'
import { formatAge } from '../util/format.js'
import { base } from './theme.js'

const TEXT: Readonly<Record<ConnectionState, { icon: string, label: string }>> = {
  connecting: { icon: '◌', label: 'Connecting…' },
  live: { icon: '●', label: 'Live' },
  fallback: { icon: '●', label: 'Live · SSE fallback' },
  reconnecting: { icon: '◐', label: 'Reconnecting…' },
  offline: { icon: '○', label: 'Offline' },
  closed: { icon: '○', label: 'Closed' }
}

/**
 * The connection indicator. While not live it says how old the data on screen is.
 * Its `data-state` attribute mirrors the state for tests and styling.
 */
@customElement('pulse-connection-status')
export class ConnectionStatus extends LitElement {
  static override styles = [base, css`
    :host { display: inline-block; }
    .pill {
      display: inline-flex;
      align-items: center;
      gap: 0.45rem;
      padding: 0.3rem 0.75rem;
      border: 1px solid var(--border);
      border-radius: 999px;
      background: var(--panel);
      font-size: 0.85rem;
      white-space: nowrap;
    }
    .icon { font-size: 0.9rem; line-height: 1; }
    :host([data-state='live']) .icon, :host([data-state='fallback']) .icon { color: var(--up); animation: pulse 2s ease-in-out infinite; }
    :host([data-state='reconnecting']) .icon, :host([data-state='connecting']) .icon { color: var(--down); }
    :host([data-state='offline']) .icon, :host([data-state='closed']) .icon { color: var(--neutral); }
    .age { color: var(--muted); }
    @keyframes pulse { 50% { opacity: 0.35; } }
    @media (prefers-reduced-motion: reduce) { .icon { animation: none !important; } }
  `]

  @property({ reflect: true, attribute: 'data-state' }) state: ConnectionState = 'connecting'
  /** When the data on screen was last confirmed by the server, epoch ms (0: never). */
  @property({ type: Number }) dataAt = 0
  private timer: ReturnType<typeof setInterval> | undefined

  override connectedCallback (): void {
    super.connectedCallback()
    this.timer = setInterval(() => {
      if (this.state !== 'live' && this.state !== 'fallback') this.requestUpdate()
    }, 1000)
  }

  override disconnectedCallback (): void {
    super.disconnectedCallback()
    clearInterval(this.timer)
  }

  override render (): unknown {
    const { icon, label } = TEXT[this.state]
    const showAge = this.state !== 'live' && this.state !== 'fallback' && this.dataAt > 0
    const age = showAge ? formatAge(Math.max(0, Date.now() - this.dataAt)) : ''
    return html`<span class="pill" role="status">
      <span class="icon" aria-hidden="true">${icon}</span>
      <span class="label">${label}</span>
      ${showAge ? html`<span class="age">· ${this.state === 'offline' ? 'cached data' : 'data'} from ${age}</span>` : ''}
    </span>`
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'pulse-connection-status': ConnectionStatus
  }
}
