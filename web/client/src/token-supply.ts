/*
 * Where the SDK's token comes from: a fixed token, or a supplier function asked again for
 * every connection attempt and whenever the gateway refuses the one held.
 */

/**
 * A token, or a function that supplies one; it is called again for every connection
 * attempt, and, for a JWT, a little before its `exp` to refresh the live WebSocket.
 */
export type TokenSource = string | (() => string | undefined | Promise<string | undefined>)

/** A {@link TokenSource} and the token it supplied last. */
export class TokenSupply {
  #last: string | undefined
  readonly #source: TokenSource | undefined

  constructor (source: TokenSource | undefined) {
    this.#source = source
  }

  /** The token supplied last (undefined before the first, or after {@link forget}). */
  get last (): string | undefined {
    return this.#last
  }

  /** Whether a refused token can be replaced: the source is a supplier function. */
  get renewable (): boolean {
    return typeof this.#source === 'function'
  }

  /** Asks the source for a token now. */
  async fresh (): Promise<string | undefined> {
    const source = this.#source
    this.#last = typeof source === 'function' ? await source() : source
    return this.#last
  }

  /** The token held, or a fresh one when none is. */
  async current (): Promise<string | undefined> {
    return this.#last ?? await this.fresh()
  }

  /** The token held was refused: the next {@link current} asks for a fresh one. */
  forget (): void {
    this.#last = undefined
  }
}
