import { readdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'

const HERE = dirname(fileURLToPath(import.meta.url))

/**
 * Bundles the k6 scripts for a k6 older than 1.6, which has no `k6/websockets`:
 * `k6/websockets` becomes `k6/experimental/websockets` (k6 0.48–1.5), and before k6 0.51,
 * where timers are not yet globals, the timers are imported from `k6/experimental/timers`.
 * The bundles go to `load-tests/k6-compat/`, beside `k6/`, so `open('../scenarios.json')`
 * still finds the scenarios. Usage: `npx tsx load-tests/k6-compat.ts --k6 0.50`.
 */
export async function buildCompat (k6Version: string, outdir = join(HERE, 'k6-compat'), dir = join(HERE, 'k6')): Promise<string[]> {
  const match = /^(\d+)\.(\d+)/.exec(k6Version)
  if (match === null) throw new Error(`--k6 takes a version like 0.50 or 1.5, got ${JSON.stringify(k6Version)}`)
  const version = Number(match[1]) * 1000 + Number(match[2])
  if (version < 48) throw new Error('the scripts need k6 0.48 or later')
  if (version >= 1006) throw new Error(`k6 ${k6Version} runs load-tests/k6/ as it is`)
  const scripts = (await readdir(dir)).filter((name) => name.endsWith('.js')).map((name) => join(dir, name))
  await build({
    entryPoints: scripts,
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    external: ['k6', 'k6/*'],
    alias: { 'k6/websockets': 'k6/experimental/websockets' },
    banner: version < 51 ? { js: "import { setTimeout, clearTimeout, setInterval, clearInterval } from 'k6/experimental/timers'" } : {},
    logLevel: 'silent'
  })
  return scripts.map((script) => join(outdir, script.slice(dir.length + 1)))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { k6: { type: 'string' } } })
  if (values.k6 === undefined) {
    console.error('usage: npx tsx load-tests/k6-compat.ts --k6 <version of your k6, e.g. 0.50>')
    process.exitCode = 2
  } else {
    try {
      for (const file of await buildCompat(values.k6)) console.log(file)
    } catch (err) {
      console.error((err as Error).message)
      process.exitCode = 1
    }
  }
}
