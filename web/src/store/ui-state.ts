import { isResolution, type Resolution } from './model.js'

/** What the session remembers across reloads. */
export interface UiState {
  ticker: string | undefined
  resolution: Resolution
  /** The ticker list last seen, so a page reloaded while the server is away still has it. */
  tickers: string[]
}

const KEY = 'pulse.ui/1'

/** Reads the session's selection; defaults when absent or unreadable. */
export function loadUiState (): UiState {
  try {
    const raw = JSON.parse(sessionStorage.getItem(KEY) ?? '{}') as Partial<Record<keyof UiState, unknown>>
    return {
      ticker: typeof raw.ticker === 'string' ? raw.ticker : undefined,
      resolution: isResolution(raw.resolution) ? raw.resolution : '1m',
      tickers: Array.isArray(raw.tickers) ? raw.tickers.filter((t): t is string => typeof t === 'string') : []
    }
  } catch {
    return { ticker: undefined, resolution: '1m', tickers: [] }
  }
}

/** Remembers the selection for this tab's session. */
export function saveUiState (state: UiState): void {
  try {
    sessionStorage.setItem(KEY, JSON.stringify(state))
  } catch {
    // Storage may be full or disabled; the selection then lasts only for this page.
  }
}
