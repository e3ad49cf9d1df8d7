import WebSocket from 'ws'
import type { WireBucket } from '../../shared/timeseries/bucket.js'

/** A bucket as received over the stream. */
export type StreamedBucket = WireBucket

/**
 * A real WebSocket client that subscribes and keeps the newest state (highest rev) of
 * every bucket it hears about, as a dashboard would.
 */
export class WsWatcher {
  readonly latest = new Map<string, StreamedBucket>()
  readonly errors: unknown[] = []
  #socket: WebSocket | undefined
  lastEventId: string | undefined

  static key (ticker: string, resolution: string, timestamp: string): string {
    return `${ticker}#${resolution}@${timestamp}`
  }

  async connect (url: string, tickers: string[], resolutions: string[], positions?: Record<string, string>): Promise<void> {
    const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/api/v2/ws`)
    this.#socket = socket
    socket.on('message', (data) => {
      const parsed = JSON.parse(data.toString()) as Record<string, unknown> | Array<Record<string, unknown>>
      for (const event of Array.isArray(parsed) ? parsed : [parsed]) this.#receive(event)
    })
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve)
      socket.once('error', reject)
    })
    const subscribed = new Promise<void>((resolve) => {
      const onMessage = (data: WebSocket.RawData): void => {
        if (data.toString().includes('"subscribed"')) {
          socket.off('message', onMessage)
          resolve()
        }
      }
      socket.on('message', onMessage)
    })
    socket.send(JSON.stringify({ op: 'subscribe', tickers, resolutions, ...(positions === undefined ? {} : { positions }) }))
    await subscribed
  }

  close (): void {
    this.#socket?.terminate()
  }

  #receive (event: Record<string, unknown>): void {
    if (event.type === 'error') this.errors.push(event)
    if (event.type !== 'partial_bucket' && event.type !== 'bucket_update') return
    if (typeof event.id === 'string') this.lastEventId = event.id
    const bucket = event.bucket as StreamedBucket
    const key = WsWatcher.key(bucket.ticker, bucket.resolution, bucket.timestamp)
    const known = this.latest.get(key)
    if (known === undefined || known.rev <= bucket.rev) this.latest.set(key, bucket)
  }
}
