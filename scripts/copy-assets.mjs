// Copies runtime files that tsc does not emit (the Redis Lua scripts, the embedded
// DynamoDB's worker thread) into dist/.
import { copyFile, mkdir, readdir } from 'node:fs/promises'

const from = new URL('../shared/adapters/redis/lua/', import.meta.url)
const to = new URL('../dist/shared/adapters/redis/lua/', import.meta.url)

await mkdir(to, { recursive: true })
const files = (await readdir(from)).filter((name) => name.endsWith('.lua'))
await Promise.all(files.map((name) => copyFile(new URL(name, from), new URL(name, to))))
console.log(`copied ${files.length} Lua scripts to dist/shared/adapters/redis/lua/`)

await copyFile(new URL('../shared/adapters/dynamo/dynalite-thread.mjs', import.meta.url), new URL('../dist/shared/adapters/dynamo/dynalite-thread.mjs', import.meta.url))
