// The embedded DynamoDB's worker thread (started by `embedded-dynamo.ts`): dynalite on
// loopback, a close that lets the requests in progress answer, and, when asked for, the
// archive client beside it (`serveArchive`). Plain JavaScript, so the thread starts the same
// way from the sources and from dist/.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parentPort, workerData } from 'node:worker_threads'
import dynalite from 'dynalite'
import { closeIteratorsDynaliteStops } from './dynalite-iterator-fix.mjs'

/**
 * `embedded-dynamo`, compiled in dist/; from the sources (development and tests, where
 * the TypeScript loader of the main thread does not reach worker threads) through tsx,
 * a development dependency.
 */
async function loadEmbeddedDynamo () {
  const compiled = new URL('./embedded-dynamo.js', import.meta.url)
  if (existsSync(fileURLToPath(compiled))) return await import(compiled.href)
  const { register } = await import('tsx/esm/api')
  register()
  return await import(new URL('./embedded-dynamo.ts', import.meta.url).href)
}

/** @param {{ dir?: string, port?: number }} options */
async function serve (options) {
  closeIteratorsDynaliteStops()
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
  const closeArchive = workerData.archive === undefined
    ? async () => {}
    : await (await loadEmbeddedDynamo()).serveArchive(port, `http://127.0.0.1:${server.port}`, workerData.archive)
  port.on('message', (message) => {
    if (message.op !== 'close') return
    closeArchive().finally(() => server.close()).finally(() => {
      port.postMessage({ op: 'closed' })
      port.close()
    })
  })
  port.postMessage({ op: 'listening', port: server.port })
} catch (err) {
  port.postMessage({ op: 'failed', error: err instanceof Error ? err.message : String(err) })
  port.close()
}
