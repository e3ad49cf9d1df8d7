import { css } from 'lit'

/** Layout of the shell: three columns when wide, two on tablets, one on phones. */
export const appStyles = css`
  :host { display: block; min-height: 100vh; background: var(--bg); }
  .shell {
    display: grid;
    grid-template-columns: 272px minmax(0, 1fr) 320px;
    grid-template-areas:
      'header header header'
      'list main side';
    gap: 14px;
    padding: 14px 18px 24px;
    max-width: 1840px;
    margin: 0 auto;
    box-sizing: border-box;
  }
  header { grid-area: header; display: flex; justify-content: space-between; align-items: center; gap: 1rem; flex-wrap: wrap; }
  .brand { display: flex; align-items: baseline; gap: 0.6rem; }
  .brand h1 { margin: 0; font-size: 1.35rem; letter-spacing: 0.02em; }
  .logo { color: var(--up); font-size: 1.1rem; }
  .tag { color: var(--muted); font-size: 0.9rem; }
  .tickers { grid-area: list; padding: 0.8rem 0.6rem; align-self: start; display: flex; flex-direction: column; }
  pulse-ticker-list { --list-height: max(320px, calc(100vh - 190px)); }
  .tickers h2 { padding: 0 0.5rem; }
  .chart-panel { grid-area: main; padding: 0.9rem 1rem 0.6rem; min-width: 0; align-self: start; }
  .side { grid-area: side; display: flex; flex-direction: column; gap: 14px; }
  .side .panel { padding: 0.9rem 1rem; }
  .toolbar { display: flex; justify-content: space-between; align-items: center; gap: 0.8rem; flex-wrap: wrap; margin-bottom: 0.6rem; }
  .actions { display: flex; align-items: center; gap: 0.6rem; flex-wrap: wrap; }
  .download {
    color: var(--text); font-size: 0.85rem; text-decoration: none; white-space: nowrap;
    border: 1px solid var(--border); border-radius: 6px; padding: 0.3rem 0.65rem;
  }
  .download:hover, .download:focus-visible { border-color: var(--up); }
  .title { display: flex; align-items: baseline; gap: 0.7rem; flex-wrap: wrap; }
  .symbol { margin: 0; font-size: 1.6rem; }
  .headline { font-size: 1.25rem; font-weight: 700; }
  .sub { color: var(--muted); font-size: 0.85rem; }
  .legend { margin: 0.5rem 0 0; font-size: 0.78rem; color: var(--muted); }
  @media (max-width: 1180px) {
    .shell {
      grid-template-columns: 240px minmax(0, 1fr);
      grid-template-areas: 'header header' 'list main' 'list side';
    }
    .side { flex-direction: row; flex-wrap: wrap; }
    .side .panel { flex: 1 1 260px; }
  }
  @media (max-width: 720px) {
    .shell { grid-template-columns: minmax(0, 1fr); grid-template-areas: 'header' 'list' 'main' 'side'; padding: 10px; gap: 10px; }
    .tickers { padding: 0.6rem 0.4rem; }
    pulse-ticker-list { --list-height: 300px; }
    pulse-sentiment-chart { --chart-height: 320px; }
    .side { flex-direction: column; }
    .side .panel { flex: none; }
    .symbol { font-size: 1.3rem; }
  }
`
