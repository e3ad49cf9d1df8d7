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
  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closing ??= new Promise<void>((resolve, reject) => {
      server.close((err) => err === undefined || err === null ? resolve() : reject(err))
      // Keep-alive sockets of clients would hold the close open until they idle out.
      server.closeAllConnections()
    })
    await closing
  }
  return { endpoint: `http://127.0.0.1:${port}`, port, close }
}
