/**
 * Bytes of a dynalite store on disk, and the memory of what hosts it, while bucket states
 * are overwritten and read back in pages, with expiry running every 100 ms: what
 * `DATA_DIR/dynalite` costs a deployment that runs for months, and what the stand-in
 * DynamoDB of the cluster soak and the tests costs. Both should stay flat once the table
 * holds its live rows. Run: `npx tsx bench/embedded-store.bench.ts` (STORE_WRITES to change
 * the number of bucket writes, default 80,000; STORE_HOST=thread, the embedded archive's
 * thread in this process, the default; `process`, dynalite in a process of its own as the
 * soak and the tests start it, `scripts/dynalite.mjs`; `process-unfixed`, the same from
 * dynalite's own CLI, without the iterator fix).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DynamoArchive } from '../shared/adapters/dynamo/dynamo-archive.js'
import { EmbeddedArchive } from '../shared/adapters/dynamo/embedded-dynamo.js'
import { ExpirySweeper } from '../shared/adapters/dynamo/expiry-sweeper.js'
import { createDynamoClients } from '../shared/adapters/dynamo/client.js'
import type { Archive } from '../shared/ports/archive.js'
import type { Bucket } from '../shared/timeseries/bucket.js'
import { bucketStart, RESOLUTIONS } from '../shared/timeseries/resolutions.js'
import { freePort } from '../test/helpers/free-port.js'
import { oneItemBucket } from '../test/helpers/items.js'
import { printTable } from './table.js'

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
const WRITES = Number(process.env.STORE_WRITES ?? 80_000)
const HOST = process.env.STORE_HOST ?? 'thread'
const KEYS = 3000
const BATCH = 100
const TABLE = 'bench-sentiment-timeseries'

interface Store {
  archive: Archive
  /** Resident memory of what hosts the store, bytes. */
  rss: () => Promise<number>
  close: () => Promise<void>
}

async function threadStore (dir: string): Promise<Store> {
  const archive = await EmbeddedArchive.start({ dir, tableName: TABLE, region: 'us-east-1', expiryEveryMs: 100 })
  return { archive, rss: async () => process.memoryUsage().rss, close: async () => await archive.close() }
}

/** dynalite in a child process, with a sweeper every 100 ms as the embedded archive runs one. */
async function processStore (dir: string, script: string): Promise<Store> {
  const port = await freePort()
  const child: ChildProcess = spawn(process.execPath, [script, '--port', String(port), '--path', dir, '--createTableMs', '0'], { stdio: 'ignore' })
  const endpoint = `http://127.0.0.1:${port}`
  for (let deadline = Date.now() + 30_000; !await fetch(endpoint, { method: 'POST' }).then(() => true, () => false); await sleep(50)) {
    if (Date.now() > deadline) throw new Error('dynalite did not start')
  }
  const archive = await DynamoArchive.open({ region: 'us-east-1', endpoint, tableName: TABLE })
  const { doc, client } = createDynamoClients({ region: 'us-east-1', endpoint })
  const sweeper = new ExpirySweeper({ client: doc, tableName: TABLE })
  const stop = new AbortController()
  const sweeps = (async () => {
    while (!stop.signal.aborted) {
      await sweeper.round(Date.now()).catch(() => {})
      await sleep(100)
    }
  })()
  return {
    archive,
    rss: async () => Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024,
    close: async () => {
      stop.abort()
      await sweeps
      await archive.close()
      client.destroy()
      child.kill()
    }
  }
}

const dir = await mkdtemp(join(tmpdir(), 'pulse-store-'))
const store = HOST === 'thread'
  ? await threadStore(dir)
  : HOST === 'process'
    ? await processStore(dir, 'scripts/dynalite.mjs')
    : HOST === 'process-unfixed'
      ? await processStore(dir, 'node_modules/dynalite/cli.js')
      : (() => { throw new Error(`STORE_HOST must be thread, process or process-unfixed; got ${HOST}`) })()
const { archive } = store
const megabytes = (): number => Number(execFileSync('du', ['-sm', dir]).toString().split('\t')[0])
const now = Date.now()
const rows: Array<Record<string, string | number>> = []
let written = 0
const began = Date.now()
while (written < WRITES) {
  const batch: Bucket[] = []
  for (let i = 0; i < BATCH; i++, written++) {
    const key = written % KEYS
    const resolution = RESOLUTIONS[key % 2 === 0 ? 0 : 3] as Bucket['resolution']
    const start = bucketStart(now, resolution) - Math.floor(key / 2) * (resolution === '1m' ? 60_000 : 3_600_000) % (6 * 3_600_000)
    batch.push({ ...oneItemBucket({ ticker: `T${key % 50}`, resolution, start }, { ts: start, id: `i${written}` }, written + 1), sources: [`source-${written % 7}`, 'x'.repeat(200)] })
  }
  await archive.put(batch)
  if (written % 1000 === 0) await archive.range(`T${written % 50}`, '1m', now - 6 * 3_600_000, now + 60_000, Date.now())
  if (written % 10_000 === 0) rows.push({ writes: written, seconds: Math.round((Date.now() - began) / 1000), 'store MB': megabytes(), 'RSS MB': Math.round(await store.rss() / 1e6) })
}
await store.close()
await rm(dir, { recursive: true, force: true })
printTable(`dynalite store (${HOST}), ${KEYS} buckets overwritten, a page read every 1,000 writes, expiry every 100 ms, ${new Date().toISOString()}`, rows)
