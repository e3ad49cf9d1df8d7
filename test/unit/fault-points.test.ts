import t from 'tap'
import { loadConfig } from '../../shared/config/config.js'
import { armFaults, faultPoint, parseFaults } from '../../shared/fault-points.js'

t.teardown(() => armFaults(''))

t.test('an unarmed point resolves at once', async (t) => {
  armFaults('')
  await faultPoint('fold.after')
  t.pass()
})

t.test('throw fires on the named hit only, and from a hit onwards with +', async (t) => {
  armFaults('a.point=throw@2,b.point=throw@2+')
  await faultPoint('a.point')
  await t.rejects(faultPoint('a.point'), /fault injected at a.point/)
  await faultPoint('a.point')
  await faultPoint('b.point')
  await t.rejects(faultPoint('b.point'))
  await t.rejects(faultPoint('b.point'))
})

t.test('delay holds the call', async (t) => {
  armFaults('slow=delay:30')
  const began = Date.now()
  await faultPoint('slow')
  t.ok(Date.now() - began >= 25)
})

t.test('malformed specs are refused, naming the entry', async (t) => {
  t.throws(() => parseFaults('nope'), /'nope'/)
  t.throws(() => parseFaults('x=explode'), /'x=explode'/)
  t.throws(() => loadConfig({ PULSE_FAULTS: 'x=explode' }), /PULSE_FAULTS/)
})

t.test('production refuses fault injection', async (t) => {
  t.throws(() => loadConfig({ PULSE_FAULTS: 'x=kill', NODE_ENV: 'production' }), /PULSE_FAULTS.*production/)
  const before = process.env.NODE_ENV
  process.env.NODE_ENV = 'production'
  t.teardown(() => {
    if (before === undefined) delete process.env.NODE_ENV
    else process.env.NODE_ENV = before
  })
  t.throws(() => armFaults('x=kill'), /production/)
})
