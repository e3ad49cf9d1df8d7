import { css } from 'lit'

/**
 * Colours chosen to stay distinct for the common colour-vision deficiencies (Okabe–Ito
 * blue and orange instead of green and red); direction is always also shown as an arrow
 * and a word, never by colour alone.
 */
export const COLORS = {
  up: '#56b4e9',
  upMuted: 'rgba(86, 180, 233, 0.45)',
  down: '#e69f00',
  downMuted: 'rgba(230, 159, 0, 0.45)',
  neutral: '#8b98a5',
  text: '#e6edf3',
  muted: '#9aa7b4',
  grid: '#21262d',
  border: '#30363d'
} as const

/** Tokens and focus styling shared by every component. */
export const base = css`
  :host {
    --bg: #0d1117;
    --panel: #161b22;
    --panel-2: #1c2330;
    --border: #30363d;
    --text: #e6edf3;
    --muted: #9aa7b4;
    --up: #56b4e9;
    --down: #e69f00;
    --neutral: #8b98a5;
    --focus: #ffd33d;
    --radius: 10px;
    color: var(--text);
    font-variant-numeric: tabular-nums;
  }
  :focus-visible {
    outline: 3px solid var(--focus);
    outline-offset: 2px;
  }
  button {
    font: inherit;
    color: inherit;
  }
  .visually-hidden {
    position: absolute;
    width: 1px;
    height: 1px;
    overflow: hidden;
    clip-path: inset(50%);
    white-space: nowrap;
  }
  .up { color: var(--up); }
  .down { color: var(--down); }
  .flat { color: var(--neutral); }
  .panel {
    background: var(--panel);
    border: 1px solid var(--border);
    border-radius: var(--radius);
  }
  h2 {
    margin: 0 0 0.6rem;
    font-size: 0.78rem;
    font-weight: 600;
    letter-spacing: 0.06em;
    text-transform: uppercase;
    color: var(--muted);
  }
`
