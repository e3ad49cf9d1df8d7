/** A listener map keyed by event name; `on` returns the function that removes the listener. */
export class Emitter<Events extends { [name: string]: (...args: never[]) => void }> {
  readonly #listeners = new Map<keyof Events, Set<Events[keyof Events]>>()

  /** Adds a listener; returns the function that removes it. */
  on<E extends keyof Events> (event: E, listener: Events[E]): () => void {
    let set = this.#listeners.get(event)
    if (set === undefined) this.#listeners.set(event, set = new Set())
    set.add(listener)
    return () => { set.delete(listener) }
  }

  protected emit<E extends keyof Events> (event: E, ...args: Parameters<Events[E]>): void {
    for (const listener of this.#listeners.get(event) ?? []) {
      // A throwing listener must not stop the others or the SDK; it is reported where it can be seen.
      try {
        (listener as (...a: Parameters<Events[E]>) => void)(...args)
      } catch (err) {
        queueMicrotask(() => { throw err })
      }
    }
  }
}
