import { ClassicLevel } from 'classic-level'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { closeIteratorsDynaliteStops } from '../../shared/adapters/dynamo/dynalite-iterator-fix.mjs'

// dynalite stops a page early with `iterator.return()`; without it the LevelDB iterator
// stays open and pins the store's files (docs/benchmarks.md#soak).
t.test('an iterator dynalite stops early is closed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pulse-level-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const db = new ClassicLevel(dir)
  t.teardown(async () => await db.close())
  await db.batch(Array.from({ length: 10 }, (_, i) => ({ type: 'put' as const, key: `k${i}`, value: 'v' })))
  closeIteratorsDynaliteStops()
  for (const iterator of [db.iterator(), db.keys(), db.values()]) {
    await iterator.next()
    const next = async (): Promise<unknown> => await iterator.next()
    const stop = (iterator as unknown as { return?: () => Promise<{ done: boolean }> }).return
    t.type(stop, 'function', `${iterator.constructor.name} has return()`)
    t.same(await stop?.call(iterator), { done: true, value: undefined })
    await t.rejects(next(), { code: 'LEVEL_ITERATOR_NOT_OPEN' }, `${iterator.constructor.name} is closed`)
  }
})
