// Bundles the dashboard into web/dist: index.html, main.js (+ sourcemap), sizes printed.
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
