// Bundles the dashboard into web/dist (index.html, main.js + sourcemap) and the client SDK
// into web/client/dist (index.js, store.js, lit.js); prints the sizes and fails when the
// SDK's core is over its budget.
import { createHash } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

const here = (path) => fileURLToPath(new URL(path, import.meta.url))
const outdir = here('./dist')

await rm(outdir, { recursive: true, force: true })
await mkdir(outdir, { recursive: true })

const result = await build({
  entryPoints: [here('./src/main.ts')],
  outfile: `${outdir}/main.js`,
  bundle: true,
  format: 'esm',
  target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  tsconfig: here('./tsconfig.json'),
  metafile: true,
  logLevel: 'warning'
})

const js = await readFile(`${outdir}/main.js`)
// The gateway serves a fixed file list, so the name stays plain and the hash busts caches.
const hash = createHash('sha256').update(js).digest('hex').slice(0, 10)
const template = await readFile(here('./index.html'), 'utf8')
await writeFile(`${outdir}/index.html`, template.replace('%MAIN%', `/main.js?v=${hash}`))

const kb = (n) => `${(n / 1024).toFixed(1)} KB`
const gz = gzipSync(js, { level: 9 }).length
console.log(`web/dist/main.js  ${kb(js.length)} raw, ${kb(gz)} gzip  (${Object.keys(result.metafile.inputs).length} modules)`)

/** The SDK core (`@pulse/client`), minified and gzipped, may not grow past this. */
const SDK_CORE_BUDGET = 8 * 1024
const sdkOut = here('./client/dist')
await rm(sdkOut, { recursive: true, force: true })
await build({
  entryPoints: ['index', 'store', 'lit'].map((name) => here(`./client/src/${name}.ts`)),
  outdir: sdkOut,
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: ['es2022'],
  minify: true,
  // The Lit adapter uses the application's Lit, never a copy of its own.
  external: ['lit'],
  tsconfig: here('./tsconfig.json'),
  logLevel: 'warning'
})
for (const name of ['index', 'store', 'lit']) {
  const code = await readFile(`${sdkOut}/${name}.js`)
  const size = gzipSync(code, { level: 9 }).length
  const core = name === 'index'
  console.log(`web/client/dist/${name}.js  ${kb(code.length)} raw, ${kb(size)} gzip${core ? `  (SDK core, budget ${kb(SDK_CORE_BUDGET)})` : ''}`)
  if (core && size > SDK_CORE_BUDGET) {
    console.error(`The SDK core is ${kb(size)} gzipped, over its budget of ${kb(SDK_CORE_BUDGET)}`)
    process.exitCode = 1
  }
}
