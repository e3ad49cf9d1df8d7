// The embedded DynamoDB's worker thread (started by `dynalite-server.ts`): dynalite on
// loopback, and a close that lets the requests in progress answer. Plain JavaScript, so
// the thread loads the same way from the sources and from dist/, with no TypeScript loader.
import { parentPort, workerData } from 'node:worker_threads'
import dynalite from 'dynalite'

/** @param {{ dir?: string, port?: number }} options */
async function serve (options) {
  const server = dynalite({
    ...(options.dir === undefined ? {} : { path: options.dir }),
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve(undefined)
    })
  })
  // Requests in progress, so a close can let them finish: dynalite closes its store once the
  // server has closed, and a query still queued inside it would then throw out of a timer
  // and end the thread with an error.
  let inFlight = 0
  /** @type {(() => void) | undefined} */
  let idle
  server.on('request', (_request, response) => {
    inFlight++
    response.once('close', () => {
      if (--inFlight === 0) idle?.()
    })
  })
  const close = async () => {
    const closed = new Promise((resolve, reject) => {
      server.close((err) => err === undefined || err === null ? resolve(undefined) : reject(err))
    })
    server.closeIdleConnections()
    if (inFlight > 0) {
      await new Promise((resolve) => {
        idle = () => resolve(undefined)
        setTimeout(resolve, 5000).unref()
      })
    }
    // Keep-alive sockets of clients would hold the close open until they idle out.
    server.closeAllConnections()
    await closed
  }
  return { port: server.address().port, close }
}

const port = parentPort
try {
  const server = await serve(workerData.options)
  port.on('message', (message) => {
    if (message !== 'close') return
    server.close().finally(() => {
      port.postMessage({ op: 'closed' })
      port.close()
    })
  })
  port.postMessage({ op: 'listening', port: server.port })
} catch (err) {
  port.postMessage({ op: 'failed', error: err instanceof Error ? err.message : String(err) })
  port.close()
}
