import type { ReactiveController, ReactiveControllerHost } from 'lit'
import type { ConnectionState, PulseClient } from './client.js'
import type { SubscribeOptions, Subscription } from './series.js'
import type { Bucket, Resolution } from './types.js'

interface Watch {
  ticker: string
  resolutions: readonly Resolution[]
  onBucket: (bucket: Bucket) => void
  options: SubscribeOptions | undefined
  sub?: Subscription
}

/**
 * A Lit `ReactiveController` over a client: `state` mirrors the connection and the host
 * re-renders when it changes; {@link PulseController.watch} subscribes while the host is
 * connected to the document and closes the subscription when it leaves.
 *
 * ```ts
 * class Ticker extends LitElement {
 *   pulse = new PulseController(this, client)
 *   connectedCallback () { super.connectedCallback(); this.pulse.watch('AAPL', ['1m'], (b) => { this.last = b }) }
 *   render () { return html`${this.pulse.state}: ${this.last?.avg}` }
 * }
 * ```
 */
export class PulseController implements ReactiveController {
  state: ConnectionState
  readonly #watches: Watch[] = []
  #off: (() => void) | undefined
  #connected = false

  constructor (private readonly host: ReactiveControllerHost, readonly client: PulseClient) {
    this.state = client.state
    host.addController(this)
  }

  /** Watches while the host is connected; the host re-renders after each bucket. Returns the function that stops. */
  watch (ticker: string, resolutions: readonly Resolution[], onBucket: (bucket: Bucket) => void, options?: SubscribeOptions): () => void {
    const watch: Watch = { ticker, resolutions, onBucket, options }
    this.#watches.push(watch)
    if (this.#connected) this.#open(watch)
    return () => {
      watch.sub?.close()
      this.#watches.splice(this.#watches.indexOf(watch), 1)
    }
  }

  hostConnected (): void {
    this.#connected = true
    this.state = this.client.state
    this.#off = this.client.on('state', (state) => {
      this.state = state
      this.host.requestUpdate()
    })
    for (const watch of this.#watches) this.#open(watch)
  }

  hostDisconnected (): void {
    this.#connected = false
    this.#off?.()
    for (const watch of this.#watches) {
      watch.sub?.close()
      delete watch.sub
    }
  }

  #open (watch: Watch): void {
    watch.sub = this.client.subscribe(watch.ticker, watch.resolutions, (bucket) => {
      watch.onBucket(bucket)
      this.host.requestUpdate()
    }, watch.options)
  }
}
