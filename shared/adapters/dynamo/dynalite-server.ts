import { mkdir } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import dynalite from 'dynalite'

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

/**
 * Starts dynalite in-process on loopback only, with table state changes instant (no
 * CREATING/DELETING delays), so embedded mode needs no AWS and no separate process.
 */
export async function startDynalite (options: DynaliteOptions = {}): Promise<DynaliteServer> {
  if (options.dir !== undefined) await mkdir(options.dir, { recursive: true })
  const server = dynalite({
    ...(options.dir === undefined ? {} : { path: options.dir }),
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  // Requests in progress, so a close can let them finish: dynalite closes its store once the
  // server has closed, and a query still queued inside it would then throw out of a timer
  // and take the process down.
  let inFlight = 0
  let idle: (() => void) | undefined
  server.on('request', (_request, response) => {
    inFlight++
    response.once('close', () => {
      if (--inFlight === 0) idle?.()
    })
  })
  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closing ??= (async () => {
      const closed = new Promise<void>((resolve, reject) => {
        server.close((err) => err === undefined || err === null ? resolve() : reject(err))
      })
      server.closeIdleConnections()
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          idle = resolve
          setTimeout(resolve, 5000).unref()
        })
      }
      // Keep-alive sockets of clients would hold the close open until they idle out.
      server.closeAllConnections()
      await closed
    })()
    await closing
  }
  return { endpoint: `http://127.0.0.1:${port}`, port, close }
}
