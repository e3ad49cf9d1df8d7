// A fix to dynalite (4.0) that every dynalite Pulse starts needs: the embedded thread
// (`embedded-dynamo-thread.mjs`) and the dynalite process the soak, the tests and the
// benchmarks run as a stand-in DynamoDB (`scripts/dynalite.mjs`). Plain JavaScript, so both
// load it the same way from the sources and from dist/.
import { AbstractKeyIterator } from 'abstract-level'

/**
 * dynalite closes a LevelDB iterator it stops reading early — every Scan or Query page
 * that ends before the data does, every `Limit` — by calling `iterator.return()`, which
 * abstract-level's iterators do not have, so each such page left its iterator open. An open
 * iterator pins the store's files, so the store on disk, and the memory that maps it, grew
 * without bound (about 1 MB/s under the soak's load; see docs/benchmarks.md#soak).
 * This gives every abstract-level iterator a `return` that closes it. abstract-level is a
 * direct dependency at the version dynalite's `level` uses, so this is the one copy both
 * load. Call it before dynalite opens its store; calling it again changes nothing.
 */
export function closeIteratorsDynaliteStops () {
  const common = Object.getPrototypeOf(AbstractKeyIterator.prototype)
  if (typeof common.return === 'function') return
  common.return = async function () {
    await this.close()
    return { done: true, value: undefined }
  }
}
