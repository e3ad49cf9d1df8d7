import { connect } from 'node:net'
import fc from 'fast-check'
import t from 'tap'
import { nastyString, storedDigest, wrongValue } from '../helpers/hostile.js'
import { eventually, startTestPulse, TEST_INGEST_KEY, type TestPulse } from '../helpers/pulse.js'

const FIELDS = ['id', 'ticker', 'timestamp', 'score', 'label', 'source', 'text'] as const

function validItem (i: number): Record<string, unknown> {
  return { id: `seed-${i}`, ticker: 'AAPL', timestamp: new Date(Date.now() - i * 1000).toISOString(), score: 0.25, source: 'tiingo' }
}

/** A value that breaks the rule of `field` (never a value the rule accepts). */
function badValueFor (field: typeof FIELDS[number]): fc.Arbitrary<unknown> {
  switch (field) {
    case 'id': return fc.oneof(wrongValue, fc.constant(''), fc.constant('x'.repeat(129)), fc.constantFrom('a\u0000b', 'a\nb', '\u001b[31m', 'a\rb'))
    case 'ticker': return fc.oneof(wrongValue, nastyString, fc.constantFrom('ZZZZ', 'aapl', 'AAPL ', '', 'A'.repeat(11), 'AAPL#1m', 'AAPL:1m', 'AAPL\n'))
    case 'timestamp': return fc.oneof(wrongValue, nastyString, fc.constantFrom('', 'yesterday', '2025-13-40T99:99:99Z', '2025-12-21T10:35:00', '9999-12-31T23:59:59Z', '1970-01-01T00:00:00Z'))
    case 'score': return fc.oneof(fc.constant(null), fc.boolean(), fc.constant('0.5'), fc.constant(1e308), fc.constant(-1e308), fc.double({ min: 1.0000001, max: 1e300, noNaN: true }), fc.constant([]), fc.constant({}))
    case 'label': return fc.oneof(wrongValue, nastyString, fc.constantFrom('POSITIVE', 'good', ''))
    case 'source': return fc.oneof(wrongValue, nastyString, fc.constantFrom('', 'Tiingo', 'a'.repeat(33), 'a b'))
    case 'text': return fc.oneof(wrongValue, fc.constant('x'.repeat(4097)), fc.constant('é'.repeat(2100)))
  }
}

interface Answer { status: number, code: string | undefined }

async function send (p: TestPulse, body: string | Buffer, contentType = 'application/json'): Promise<Answer> {
  const res = await fetch(`${p.url}/api/v2/items`, { method: 'POST', headers: { 'content-type': contentType, authorization: `Bearer ${TEST_INGEST_KEY}` }, body })
  const text = await res.text()
  let code: string | undefined
  try { code = (JSON.parse(text) as { error?: { code?: string } }).error?.code } catch {}
  return { status: res.status, code }
}

t.test('POST /api/v2/items: hostile bodies get a 4xx with a catalogue code and change nothing', async (t) => {
  const p = await startTestPulse(t)
  t.equal((await p.post(Array.from({ length: 20 }, (_, i) => validItem(i)))).status, 202, 'seed data ingested')
  await eventually(async () => (await storedDigest(p)).includes('queue=0') ? true : undefined)
  const before = await storedDigest(p)
  const counts: Record<string, number> = {}
  const codes = new Map<string, number>()
  const check = async (surface: string, answer: Answer): Promise<boolean> => {
    counts[surface] = (counts[surface] ?? 0) + 1
    codes.set(answer.code ?? `none ${answer.status}`, (codes.get(answer.code ?? `none ${answer.status}`) ?? 0) + 1)
    return answer.status >= 400 && answer.status < 500 && /^PULSE_ERR_[A-Z_]+$/.test(answer.code ?? '')
  }

  // One bad field (every field, every kind of bad value) in an otherwise valid batch.
  await fc.assert(fc.asyncProperty(fc.constantFrom(...FIELDS).chain((field) => fc.tuple(fc.constant(field), badValueFor(field))), fc.nat({ max: 5 }), async ([field, value], at) => {
    const batch = Array.from({ length: 6 }, (_, i) => validItem(100 + i))
    ;(batch[at] as Record<string, unknown>)[field] = value
    if (field === 'text') delete (batch[at] as Record<string, unknown>).score
    return await check('one bad field', await send(p, JSON.stringify(batch)))
  }), { numRuns: 400 })

  // Arbitrary JSON of any shape.
  await fc.assert(fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (value) => await check('arbitrary JSON', await send(p, JSON.stringify(value)))), { numRuns: 300 })

  // Unknown extra fields, including `__proto__` and `constructor`.
  await fc.assert(fc.asyncProperty(fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'PK', 'ttl', 'rev'), nastyString), async (key) => {
    return await check('extra fields', await send(p, `[${JSON.stringify(validItem(200)).slice(0, -1)},${JSON.stringify(key)}:1}]`))
  }), { numRuns: 100 })

  // Raw texts no serializer would make: NaN, Infinity, -0 in the wrong place, duplicate keys, invalid UTF-8, deep nesting.
  const raws: Array<[string, string | Buffer]> = [
    ['NaN', '[{"id":"a","ticker":"AAPL","timestamp":"2025-01-01T00:00:00Z","score":NaN,"source":"x"}]'],
    ['Infinity', '[{"id":"a","ticker":"AAPL","timestamp":"2025-01-01T00:00:00Z","score":Infinity,"source":"x"}]'],
    ['-0 ticker', `[${JSON.stringify({ ...validItem(1), ticker: 0 }).replace('"ticker":0', '"ticker":-0')}]`],
    ['duplicate keys, last bad', `[${JSON.stringify(validItem(1)).slice(0, -1)},"ticker":"AAPL#5m"}]`],
    ['duplicate keys, score', `[${JSON.stringify(validItem(1)).slice(0, -1)},"score":7}]`],
    ['invalid UTF-8 in ticker', Buffer.concat([Buffer.from('[{"id":"u","ticker":"AA'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(`","timestamp":"${new Date().toISOString()}","score":0.1,"source":"x"}]`)])],
    ['lone surrogate in source', `[${JSON.stringify(validItem(1)).slice(0, -1).replace('"tiingo"', '"\\ud800"')}}]`],
    ['deep nesting 10k', '['.repeat(10_000) + ']'.repeat(10_000)],
    ['deep nesting 100k', '['.repeat(100_000) + ']'.repeat(100_000)],
    ['deep object', '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000)],
    ['truncated', '[{"id":"a","ticker":"AA'],
    ['empty body', ''],
    ['empty array', '[]'],
    ['1001 items', JSON.stringify(Array.from({ length: 1001 }, (_, i) => validItem(i)))],
    ['1 MB + 1 string', JSON.stringify([{ ...validItem(1), text: 'x'.repeat(1_048_577) }])],
    ['huge array of numbers', JSON.stringify(Array.from({ length: 150_000 }, () => 1))],
    ['NDJSON bad line', '{"id":"a"}\nnot json\n']
  ]
  for (const [name, body] of raws) {
    const answer = await send(p, body, name.startsWith('NDJSON') ? 'application/x-ndjson' : 'application/json')
    t.ok(await check('raw bodies', answer), `${name}: ${answer.status} ${answer.code}`)
  }
  for (const type of ['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16']) {
    // A batch in UTF-16: a parser that guessed the charset would ingest it.
    const answer = await send(p, Buffer.from(JSON.stringify([validItem(300)]), 'utf16le'), type)
    t.ok(await check('content types', answer), `Content-Type ${type}: ${answer.status} ${answer.code}`)
  }

  t.equal((await fetch(`${p.url}/healthz`)).status, 200, 'the process is still up')
  await eventually(async () => (await storedDigest(p)).includes('queue=0') ? true : undefined)
  t.equal(await storedDigest(p), before, 'stored buckets and the queue are exactly as before')
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  t.comment(`ingest cases per kind: ${JSON.stringify(counts)} — ${total} in all; codes seen: ${JSON.stringify(Object.fromEntries(codes))}`)
})

t.test('slow requests are cut off by the request timeout', async (t) => {
  const p = await startTestPulse(t, { REQUEST_TIMEOUT_MS: '1500' })
  const port = Number(new URL(p.url).port)
  const started = Date.now()
  const outcome = await new Promise<string>((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let reply = ''
    const head = `POST /api/v2/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_INGEST_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[`
    let sent = 0
    // One byte every 200 ms, slowloris style; bounded to 60 bytes (12 s).
    const drip = setInterval(() => {
      if (sent >= 60) { clearInterval(drip); return }
      socket.write(sent < head.length ? head[sent] as string : ' ')
      sent++
    }, 200)
    socket.on('data', (chunk) => { reply += chunk.toString() })
    socket.on('close', () => { clearInterval(drip); resolve(reply.split('\r\n')[0] ?? 'closed') })
    socket.on('error', () => {})
  })
  const took = Date.now() - started
  t.comment(`a client dripping one byte per 200 ms was answered "${outcome || 'closed'}" after ${took} ms (REQUEST_TIMEOUT_MS=1500)`)
  t.ok(took < 6000, 'the connection ended within a few seconds, not when the client chose')
  t.match(outcome, /408|^$|closed/, 'answered 408 Request Timeout or closed')
  t.equal((await fetch(`${p.url}/healthz`)).status, 200, 'the process is still up')
})
