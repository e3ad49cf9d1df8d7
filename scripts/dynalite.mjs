// dynalite as a process of its own — the stand-in DynamoDB of the cluster soak, the tests
// and the benchmarks — with the iterator fix Pulse's embedded archive has, so its store
// stays bounded however long it runs. Takes dynalite's own options:
// `node scripts/dynalite.mjs --port 4567 --path ./data [--createTableMs 0 …]`.
import { createRequire } from 'node:module'
import { closeIteratorsDynaliteStops } from '../shared/adapters/dynamo/dynalite-iterator-fix.mjs'

closeIteratorsDynaliteStops()
// dynalite's CLI reads process.argv and starts listening when loaded.
createRequire(import.meta.url)('dynalite/cli.js')
