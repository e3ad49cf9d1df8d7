/*
 * The browser's own signals about the network: offline and online, and a tab coming back
 * into view, so the client acts at once rather than on its next timer. Outside a browser
 * there are none.
 */

/** What the client does on each signal. */
export interface NetworkSignals {
  online: () => void
  offline: () => void
  /** The tab is in view again, and the browser online. */
  visible: () => void
}

/** Whether the browser says it has no network (never outside a browser). */
export function isOffline (): boolean {
  return (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine === false
}

/** In a browser, calls `on` for each signal; returns the function that stops listening. */
export function watchNetwork (on: NetworkSignals): () => void {
  const unlisten: Array<() => void> = []
  const stop = (): void => { for (const remove of unlisten.splice(0)) remove() }
  const g = globalThis as unknown as { addEventListener?: EventTarget['addEventListener'], removeEventListener?: EventTarget['removeEventListener'], document?: { visibilityState: string } & EventTarget }
  if (typeof g.addEventListener !== 'function' || g.document === undefined) return stop
  const listen = (target: EventTarget, type: string, handler: () => void): void => {
    target.addEventListener(type, handler)
    unlisten.push(() => target.removeEventListener(type, handler))
  }
  const doc = g.document
  listen(globalThis as unknown as EventTarget, 'online', on.online)
  listen(globalThis as unknown as EventTarget, 'offline', on.offline)
  listen(doc, 'visibilitychange', () => {
    if (doc.visibilityState !== 'visible' || isOffline()) return
    on.visible()
  })
  return stop
}
