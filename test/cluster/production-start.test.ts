import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { cp, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { CLUSTER_DRAIN_MS, SHUTDOWN_BUDGET_MS } from '../../services/runtime.js'
import { freePort } from '../helpers/processes.js'
import { eventually, TEST_INGEST_KEY } from '../helpers/pulse.js'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** The Dockerfile's CMD. */
const CMD = ['node', 'dist/services/main.js']

/** Top-level folders of the production dependency tree (`npm ls --omit=dev`), relative to node_modules. */
async function productionPackages (): Promise<string[]> {
  const { stdout } = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 })
  const top = join(ROOT, 'node_modules')
  const names = new Set<string>()
  for (const path of stdout.split('\n')) {
    const rel = relative(top, path.trim())
    if (rel === '' || rel.startsWith('..') || path.trim() === '') continue
    const parts = rel.split('/')
    names.add(parts[0]?.startsWith('@') === true ? `${parts[0]}/${parts[1] ?? ''}` : parts[0] as string)
  }
  return [...names].sort()
}

/**
 * Lays out what the image holds, as the Dockerfile does: a clean `dist/` compiled from the
 * sources, the built dashboard, package.json, and only the production dependencies
 * (hard-linked copies, so nothing outside resolves a dev dependency).
 */
async function imageLayout (dir: string): Promise<void> {
  await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', join(dir, 'dist')], { cwd: ROOT })
  // What `npm run build` adds beside tsc's output (Lua scripts, the dynalite thread).
  await run(process.execPath, [join(ROOT, 'scripts/copy-assets.mjs'), join(dir, 'dist')], { cwd: ROOT })
  const web = join(ROOT, 'web/dist/index.html')
  if (!await stat(web).then(() => true, () => false)) await run(process.execPath, ['web/build.mjs'], { cwd: ROOT })
  await cp(dirname(web), join(dir, 'web/dist'), { recursive: true })
  for (const file of ['package.json', 'package-lock.json']) await cp(join(ROOT, file), join(dir, file))
  for (const name of await productionPackages()) {
    const target = join(dir, 'node_modules', name)
    await mkdir(dirname(target), { recursive: true })
    await run('cp', ['-al', join(ROOT, 'node_modules', name), target]).catch(async () => await cp(join(ROOT, 'node_modules', name), target, { recursive: true }))
  }
}

t.test('the production start command runs from a clean build with production dependencies only', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pulse-image-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  await imageLayout(dir)
  const modules = await readdir(join(dir, 'node_modules'))
  for (const dev of ['tsx', 'tap', 'typescript', 'eslint', 'esbuild']) t.notOk(modules.includes(dev), `${dev} (a dev dependency) is not in the image`)

  const port = await freePort()
  const child = spawn(CMD[0] as string, CMD.slice(1), {
    cwd: dir,
    // A clean environment: no NODE_OPTIONS or loaders from the test runner.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'production', PORT: String(port), HOST: '127.0.0.1', DATA_DIR: join(dir, 'data'), INGEST_API_KEY: TEST_INGEST_KEY, DEMO_FEED: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const url = `http://127.0.0.1:${port}`

  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}:\n${output}`)
    return (await fetch(`${url}/healthz`).catch(() => undefined))?.ok === true ? true : undefined
  }, 30_000, 'healthz')
  t.equal((await fetch(`${url}/readyz`)).status, 200, 'ready')
  t.match(await (await fetch(`${url}/`)).text(), /<html/i, 'serves the dashboard')
  const at = new Date().toISOString()
  const ingest = await fetch(`${url}/api/v2/items`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_INGEST_KEY}` },
    body: JSON.stringify([{ id: 'p1', ticker: 'AAPL', timestamp: at, score: 0.5, source: 'prod' }, { id: 'p2', ticker: 'AAPL', timestamp: at, text: 'strong growth and record profits', source: 'prod' }])
  })
  t.equal(ingest.status, 202, 'ingest accepted')
  const count = await eventually(async () => {
    const body = await (await fetch(`${url}/api/v2/timeseries/AAPL?resolution=1m`)).json() as { partial_bucket: { count: number } | null, buckets: Array<{ count: number }> }
    const total = [...body.buckets, ...(body.partial_bucket === null ? [] : [body.partial_bucket])].reduce((sum, b) => sum + b.count, 0)
    return total === 2 ? total : undefined
  }, 10_000, 'history to hold both items')
  t.equal(count, 2, 'history read returns the ingested items')
  t.match(await (await fetch(`${url}/metrics`)).text(), /pulse_items_accepted_total 2/, 'metrics count the ingest')

  const began = Date.now()
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit') as [number | null]
  t.equal(code, 0, 'exits 0 on SIGTERM')
  t.ok(Date.now() - began < CLUSTER_DRAIN_MS + SHUTDOWN_BUDGET_MS, `exits in ${Date.now() - began} ms`)
  t.match(output, /shut down cleanly/)
  t.notMatch(output, /"level":50/, 'no errors logged')
  t.comment(`image layout: ${basename(dir)} with ${modules.length} production packages`)
})
