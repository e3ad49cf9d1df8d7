/*
 * The dashboard's read credential, for gateways whose reads need one (READ_TOKEN or a
 * reader JWT). It comes from the page's fragment (`#token=…`, removed from the address
 * bar at once, and never sent to a server), else this tab's session storage, else the
 * reader is asked once the gateway refuses a read. Open gateways never ask.
 */

const STORAGE_KEY = 'pulse.readToken'

/** Codes after which a new token may help. */
const TOKEN_REFUSALS: ReadonlySet<string> = new Set(['PULSE_ERR_UNAUTHORIZED', 'PULSE_ERR_TOKEN_EXPIRED'])

function stored (): string | undefined {
  try {
    return sessionStorage.getItem(STORAGE_KEY) ?? undefined
  } catch {
    return undefined
  }
}

function store (token: string | undefined): void {
  try {
    if (token === undefined) sessionStorage.removeItem(STORAGE_KEY)
    else sessionStorage.setItem(STORAGE_KEY, token)
  } catch {}
}

/** Takes `#token=…` from the address, keeping it out of history and bookmarks. */
function fromFragment (): string | undefined {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash)
  if (match?.[1] === undefined) return undefined
  history.replaceState(null, '', `${location.pathname}${location.search}`)
  return decodeURIComponent(match[1])
}

/** The dashboard's token: what the client's supplier returns, and how a refusal asks for another. */
export class ReaderToken {
  #token: string | undefined
  #declined = false

  constructor () {
    const given = fromFragment()
    if (given !== undefined) store(given)
    this.#token = given ?? stored()
  }

  /** The token to send; undefined while none is known (open gateways need none). */
  current (): string | undefined {
    return this.#token
  }

  /**
   * After a refusal with `code`: asks the reader for a token (once per refusal, not again
   * after they declined). True when there is a new token to try.
   */
  refused (code: string | undefined): boolean {
    if (code === undefined || !TOKEN_REFUSALS.has(code) || this.#declined) return false
    const answer = prompt(code === 'PULSE_ERR_TOKEN_EXPIRED'
      ? 'Your Pulse token has expired. Paste a new one:'
      : 'This Pulse needs a read token (READ_TOKEN or a JWT). Paste it:')
    if (answer === null || answer.trim() === '') {
      this.#declined = true
      return false
    }
    this.#token = answer.trim()
    store(this.#token)
    return true
  }
}
