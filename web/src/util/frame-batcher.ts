/**
 * Collects values between animation frames and hands them over once per frame,
 * keeping only the newest value per key, so a burst of events costs one render.
 * Hidden tabs get no frames, so there it flushes on a slow timer instead.
 */
export class FrameBatcher<T> {
  private pending = new Map<string, T>()
  private scheduled = false

  constructor (private readonly flush: (values: T[]) => void, private readonly hiddenIntervalMs = 1000) {}

  /** Queues `value` under `key`, replacing an older value with the same key. */
  push (key: string, value: T): void {
    this.pending.set(key, value)
    if (this.scheduled) return
    this.scheduled = true
    if (document.visibilityState === 'hidden') setTimeout(() => this.run(), this.hiddenIntervalMs)
    else requestAnimationFrame(() => this.run())
  }

  /** Hands over what is pending now, without waiting for the frame. */
  flushNow (): void {
    this.run()
  }

  private run (): void {
    if (!this.scheduled) return
    this.scheduled = false
    const values = [...this.pending.values()]
    this.pending = new Map()
    if (values.length > 0) this.flush(values)
  }
}
