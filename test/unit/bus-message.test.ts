import t from 'tap'
import { BUS_MESSAGE_HEAD, decodeBusMessage, encodeBusMessage } from '../../shared/adapters/redis/bus-message.js'
import { BUCKET_FIELDS } from '../../shared/adapters/redis/bucket-codec.js'
import type { BucketEvent } from '../../shared/ports/bus.js'

const event: BucketEvent = {
  kind: 'change',
  acceptedAt: 1_766_318_400_123,
  bucket: {
    ticker: 'BRK.B',
    resolution: '5m',
    start: 1_766_318_400_000,
    open: 0.1 + 0.2,
    high: 1,
    low: -0,
    close: -1 / 3,
    count: 3,
    sum: 0.30000000000000004 - 1 / 3 + 1,
    label_counts: { positive: 1, neutral: 1, negative: 1 },
    sources: ['a"b', 'é/z'],
    sources_truncated: true,
    first: { ts: 1_766_318_400_001, id: 'x\\y' },
    last: { ts: 1_766_318_400_009, id: '😀' },
    rev: 281_474_976_710_657,
    last_updated: 1_766_318_400_500
  }
}

t.test('an event survives its wire encoding exactly', async (t) => {
  t.strictSame(decodeBusMessage(encodeBusMessage(event)), event)
  const { acceptedAt: _acceptedAt, ...final } = { ...event, kind: 'final' as const }
  t.strictSame(decodeBusMessage(encodeBusMessage(final)), final, 'without acceptedAt')
  const journal = { ...event, bucket: { ...event.bucket, seq: 42, epoch: 'e1' } }
  t.strictSame(decodeBusMessage(encodeBusMessage(journal)), journal, 'with journal marks')
  const last = { ...event, lastAtRev: true as const }
  t.strictSame(decodeBusMessage(encodeBusMessage(last)), last, 'the last state of its rev in the series')
  const parsed = JSON.parse(encodeBusMessage(event)) as string[]
  t.equal(parsed.length, BUS_MESSAGE_HEAD.length + BUCKET_FIELDS.length + 1, 'the head, the hash fields, the lastAtRev mark')
  t.equal(parsed.at(-1), '', 'unmarked')
  t.equal((JSON.parse(encodeBusMessage(last)) as string[]).at(-1), '1', 'marked')
  t.equal(parsed[BUS_MESSAGE_HEAD.length + BUCKET_FIELDS.indexOf('l')], '-0', 'a negative zero is sent with its sign')
  t.ok(Object.is(decodeBusMessage(encodeBusMessage(event))?.bucket.low, -0), 'and read back with it')
})

t.test('what is not a message decodes to nothing', async (t) => {
  const good = JSON.parse(encodeBusMessage(event)) as string[]
  const at = (field: (typeof BUCKET_FIELDS)[number]): number => BUS_MESSAGE_HEAD.length + BUCKET_FIELDS.indexOf(field)
  const broken = (index: number, value: unknown): string => JSON.stringify(good.map((v, i) => i === index ? value : v))
  const cases: Array<[string, string]> = [
    ['not JSON', 'not json {'],
    ['an object', JSON.stringify(event)],
    ['too short', JSON.stringify(good.slice(0, -1))],
    ['too long', JSON.stringify([...good, ''])],
    ['a number among the strings', broken(at('n'), 3)],
    ['another kind', broken(0, 'deleted')],
    ['an unknown resolution', broken(3, '7m')],
    ['no start', broken(4, '')],
    ['an empty count', broken(at('n'), '')],
    ['an empty rev', broken(at('rev'), '')],
    ['sources that are not JSON', broken(at('src'), '["a"')]
  ]
  for (const [what, text] of cases) t.equal(decodeBusMessage(text), undefined, what)
})
