import { readdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

/**
 * The built-in modules k6 1.6 and later (2.x included) serve: the stable ones and the
 * experimental ones still present. `setTimeout`, `setInterval` and their `clear*` functions
 * are globals (k6 >= 0.51) and need no import.
 */
export const K6_MODULES: ReadonlySet<string> = new Set([
  'k6',
  'k6/browser',
  'k6/crypto',
  'k6/crypto/x509',
  'k6/data',
  'k6/encoding',
  'k6/execution',
  'k6/html',
  'k6/http',
  'k6/metrics',
  'k6/net/grpc',
  'k6/secrets',
  'k6/timers',
  'k6/websockets',
  'k6/ws',
  'k6/experimental/csv',
  'k6/experimental/fs',
  'k6/experimental/streams'
])

/** Modules current k6 refuses (removed) or loads only with a deprecation warning, and what replaces each. */
export const K6_RETIRED: Readonly<Record<string, string>> = {
  'k6/experimental/websockets': 'deprecated since k6 1.6 and due to be removed; import k6/websockets',
  'k6/experimental/timers': 'removed in k6 0.54; setTimeout, setInterval, clearTimeout and clearInterval are globals, drop the import',
  'k6/experimental/browser': 'removed; import k6/browser',
  'k6/experimental/grpc': 'removed; import k6/net/grpc',
  'k6/experimental/tracing': 'removed; use the http-instrumentation-tempo jslib',
  'k6/experimental/webcrypto': 'removed; crypto is a global',
  'k6/experimental/redis': 'removed; use the k6/x/redis extension'
}

/** Why k6 would refuse `name`, or undefined when current k6 serves it. `k6/x/*` are extensions (a k6 built with xk6). */
export function k6ModuleProblem (name: string): string | undefined {
  if (K6_MODULES.has(name) || name.startsWith('k6/x/')) return undefined
  const retired = K6_RETIRED[name]
  return retired === undefined ? `${name} is not a k6 module` : `${name}: ${retired}`
}

/**
 * Checks the k6 scripts without a k6 binary: esbuild bundles each one with the `k6*`
 * modules left external, so syntax errors, missing files and wrong import names fail; then
 * every `k6*` module the script and its local imports ask for must be one current k6 serves.
 * Usage: `npx tsx load-tests/check-k6.ts`.
 */
export async function checkK6Scripts (dir = join(dirname(fileURLToPath(import.meta.url)), 'k6')): Promise<string[]> {
  const scripts = (await readdir(dir)).filter((name) => name.endsWith('.js')).map((name) => join(dir, name))
  const problems: string[] = []
  for (const script of scripts) {
    try {
      const { metafile } = await build({ entryPoints: [script], absWorkingDir: dir, bundle: true, write: false, metafile: true, format: 'esm', platform: 'neutral', external: ['k6', 'k6/*'], logLevel: 'silent' })
      for (const [input, { imports }] of Object.entries(metafile.inputs)) {
        for (const { path, external } of imports) {
          const problem = external ? k6ModuleProblem(path) : undefined
          if (problem !== undefined) problems.push(`${script}: ${input} imports ${problem}`)
        }
      }
    } catch (err) {
      problems.push(`${script}: ${(err as Error).message}`)
    }
  }
  return problems
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const problems = await checkK6Scripts()
  for (const problem of problems) console.error(problem)
  console.log(problems.length === 0 ? 'k6 scripts: ok' : `k6 scripts: ${problems.length} failed`)
  process.exitCode = problems.length === 0 ? 0 : 1
}
