// Copies runtime files that tsc does not emit (the Redis Lua scripts, the embedded
// DynamoDB's worker thread) into the build: `node scripts/copy-assets.mjs [outDir]`,
// dist/ by default.
import { copyFile, mkdir, readdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const root = new URL('../', import.meta.url)
const out = pathToFileURL(`${resolve(process.argv[2] ?? new URL('dist', root).pathname)}/`)

const lua = new URL('shared/adapters/redis/lua/', root)
const luaOut = new URL('shared/adapters/redis/lua/', out)
await mkdir(luaOut, { recursive: true })
const scripts = (await readdir(lua)).filter((name) => name.endsWith('.lua'))
await Promise.all(scripts.map((name) => copyFile(new URL(name, lua), new URL(name, luaOut))))

// The embedded DynamoDB's thread and the dynalite fix it imports.
const dynamo = 'shared/adapters/dynamo/'
await mkdir(new URL(dynamo, out), { recursive: true })
const modules = (await readdir(new URL(dynamo, root))).filter((name) => name.endsWith('.mjs'))
await Promise.all(modules.map((name) => copyFile(new URL(dynamo + name, root), new URL(dynamo + name, out))))
console.log(`copied ${scripts.length} Lua scripts and ${modules.join(', ')} to ${out.pathname}`)
