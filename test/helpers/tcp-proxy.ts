import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { freePort } from './free-port.js'

/** Anything that can run a function at the end of a test (a node-tap `t`). */
interface Teardown {
  teardown (fn: () => unknown): void
}

/**
 * A TCP proxy on a free loopback port in front of `target`, so a test can cut a process
 * off from a service (a network partition) while others keep their direct connections,
 * cut the connections it carries, or stop carrying the server's bytes like a client that
 * froze. It closes with the test.
 */
export interface TcpProxy {
  url: string
  port: number
  /** Closes new connections at once until {@link TcpProxy.accept}; open ones are left alone. */
  refuse (): void
  accept (): void
  /** Cuts every connection open through the proxy (a network drop). */
  drop (): void
  /**
   * Stops reading from the target: its writes back up as for a client that stopped reading.
   * Connections made later are stalled from the start (a replica that reconnects after its
   * replication timeout still receives nothing).
   */
  stall (): void
  /** Sends new connections to another server (a promoted replica behind the same address). */
  retarget (target: { host: string, port: number }): void
  /** Connections currently open through the proxy. */
  readonly open: number
}

export async function startTcpProxy (t: Teardown, target: { host: string, port: number }, scheme = 'redis'): Promise<TcpProxy> {
  const port = await freePort()
  const sockets = new Set<Socket>()
  const upstreams = new Set<Socket>()
  let refusing = false
  let current = target
  let stalled = false
  const server: Server = createServer((client) => {
    if (refusing) {
      client.destroy()
      return
    }
    const upstream = createConnection(current)
    sockets.add(client)
    sockets.add(upstream)
    upstreams.add(upstream)
    const end = (): void => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
      upstreams.delete(upstream)
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
    client.pipe(upstream)
    if (stalled) upstream.pause()
    else upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    refuse: () => { refusing = true },
    accept: () => { refusing = false },
    drop: () => { for (const socket of sockets) socket.destroy() },
    stall: () => {
      stalled = true
      for (const upstream of upstreams) {
        upstream.unpipe()
        upstream.pause()
      }
    },
    retarget: (next) => { current = next },
    get open () { return sockets.size / 2 }
  }
}
