import { mkdir } from 'node:fs/promises'
import { Worker } from 'node:worker_threads'

/*
 * The embedded DynamoDB: dynalite on loopback, in a worker thread of its own. Its store is
 * plain JavaScript (condition expressions parsed, items validated and encoded on every
 * request), and a write-behind round of conditional puts kept the event loop busy for
 * hundreds of milliseconds at a time; in its own thread that work uses the other core and
 * never delays a live update, a snapshot or an ingest acknowledgement.
 */

export interface DynaliteOptions {
  /** Directory of its LevelDB store (`DATA_DIR/dynalite`); in memory when unset. */
  dir?: string
  /** Loopback port; 0 (default) picks a free one. */
  port?: number
}

/** A running dynalite: its endpoint for the DynamoDB client, and how to stop it. */
export interface DynaliteServer {
  endpoint: string
  port: number
  close: () => Promise<void>
}

/** The thread's code: plain JavaScript, so it loads the same from the sources and from dist/. */
const THREAD = new URL('./dynalite-thread.mjs', import.meta.url)
/** A thread that does not finish its close in this time is stopped. */
const CLOSE_TIMEOUT_MS = 10_000

type FromThread = { op: 'listening', port: number } | { op: 'failed', error: string } | { op: 'closed' }

/**
 * Starts dynalite in a worker thread on loopback only, with table state changes instant
 * (no CREATING/DELETING delays), so embedded mode needs no AWS and no separate process.
 */
export async function startDynalite (options: DynaliteOptions = {}): Promise<DynaliteServer> {
  if (options.dir !== undefined) await mkdir(options.dir, { recursive: true })
  const thread = new Worker(THREAD, { workerData: { options } })
  const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()))
  const port = await new Promise<number>((resolve, reject) => {
    thread.once('error', reject)
    thread.once('exit', (code) => reject(new Error(`the dynalite thread exited (${code}) before it listened`)))
    thread.once('message', (message: FromThread) => {
      if (message.op === 'listening') resolve(message.port)
      else reject(new Error(message.op === 'failed' ? message.error : 'the dynalite thread closed before it listened'))
    })
  }).catch(async (err: unknown) => {
    await thread.terminate()
    throw err
  })
  // Past start-up a failure of the thread shows as refused requests: the archive reports
  // itself degraded and the write-behind retries, as with any unreachable DynamoDB.
  thread.on('error', () => {})
  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closing ??= (async () => {
      thread.postMessage('close')
      const stopAfter = setTimeout(() => { thread.terminate().catch(() => {}) }, CLOSE_TIMEOUT_MS)
      await exited
      clearTimeout(stopAfter)
    })()
    await closing
  }
  return { endpoint: `http://127.0.0.1:${port}`, port, close }
}
