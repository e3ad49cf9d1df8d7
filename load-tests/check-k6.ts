import { readdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

/**
 * Checks the k6 scripts without a k6 binary: esbuild bundles each one with the `k6*`
 * modules left external, so syntax errors, missing files and wrong import names all fail.
 * Usage: `npx tsx load-tests/check-k6.ts`.
 */
export async function checkK6Scripts (dir = join(dirname(fileURLToPath(import.meta.url)), 'k6')): Promise<string[]> {
  const scripts = (await readdir(dir)).filter((name) => name.endsWith('.js')).map((name) => join(dir, name))
  const problems: string[] = []
  for (const script of scripts) {
    try {
      await build({ entryPoints: [script], bundle: true, write: false, format: 'esm', platform: 'neutral', external: ['k6', 'k6/*'], logLevel: 'silent' })
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
