import t from 'tap'
import { SeriesPosition } from '../../services/gateway/series-position.js'

t.test('a series position: vouched by a read, raised by events in order, frozen while the bus is in doubt', async (t) => {
  const position = new SeriesPosition()
  position.heard(7)
  t.equal(position.value, 0, 'before any read an event vouches for nothing')
  t.notOk(position.vouched)
  position.read([{ rev: 5 }, { rev: 9 }, { rev: 2 }])
  t.ok(position.vouched)
  t.equal(position.value, 9, 'a read vouches for its newest state')
  position.heard(12)
  t.equal(position.value, 11, 'an event vouches for everything before it; states at its own rev may still come')
  position.heard(4)
  t.equal(position.value, 11, 'it never goes back')
  position.doubt()
  position.heard(20)
  t.equal(position.value, 11, 'while messages may have been lost, events vouch for nothing')
  position.read([{ rev: 15 }])
  t.equal(position.value, 15, 'a read still does')
  position.resynced()
  position.heard(20)
  t.equal(position.value, 19, 'after the resync, events vouch again')
})
