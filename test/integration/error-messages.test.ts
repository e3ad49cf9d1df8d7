import t, { type Test } from 'tap'
import { ERRORS } from '../../shared/errors.js'
import { startTestPulse, TEST_INGEST_KEY } from '../helpers/pulse.js'
import { until, WsTestClient } from '../helpers/stream-clients.js'

/**
 * Walks every error path a client can reach — HTTP routes, per-item ingest details and
 * WebSocket messages through a real client — and reads each message as a person would:
 * no regular-expression source, no phrase said twice, and validation details that name
 * their field and what was given.
 */

/** Traces of a regular expression's source: anchors, classes, quantifiers, escapes. */
const REGEX_TRACES = [/\^[[(\\A-Za-z]/, /[)\]}]\$/, /\\[dswDSWu]/, /\[[^\]\s]*-[^\]\s]*\]/, /\{\d+,\d*\}/, /\(\?[:=!]/, /\.\*|\.\+/]

/** The message without the quoted values it echoes back: those are the client's words, not Pulse's. */
const withoutQuotes = (message: string): string => message.replace(/"(?:[^"\\]|\\.)*"/g, '"…"')

/** A phrase of three or more words that appears twice. */
function repeatedPhrase (message: string): string | undefined {
  const words = withoutQuotes(message).toLowerCase().replace(/[^a-z0-9\s]/g, ' ').split(/\s+/).filter((w) => /[a-z]/.test(w))
  const seen = new Set<string>()
  for (let i = 0; i + 3 <= words.length; i++) {
    const phrase = words.slice(i, i + 3).join(' ')
    if (seen.has(phrase)) return phrase
    seen.add(phrase)
  }
  return undefined
}

function checkReadable (t: Test, where: string, message: unknown): void {
  if (typeof message !== 'string' || message.length === 0) {
    t.fail(`${where}: has a message`)
    return
  }
  const trace = REGEX_TRACES.find((re) => re.test(withoutQuotes(message)))
  t.notOk(trace, `${where}: no regular expression in ${JSON.stringify(message)}`)
  const phrase = repeatedPhrase(message)
  t.notOk(phrase, `${where}: no repeated phrase${phrase === undefined ? '' : ` ("${phrase}")`} in ${JSON.stringify(message)}`)
}

interface ErrorBody { error: { code: string, message: string, details?: Array<{ index?: number, field: string, message: string }> } }

function checkBody (t: Test, where: string, status: number, body: ErrorBody, expected: { status: number, code: string }): void {
  t.equal(status, expected.status, `${where}: status`)
  t.equal(body?.error?.code, expected.code, `${where}: code`)
  checkReadable(t, where, body?.error?.message)
  for (const detail of body?.error?.details ?? []) {
    checkReadable(t, `${where} detail ${detail.field}`, detail.message)
    t.ok(detail.message.includes(detail.field.split('.')[0] as string), `${where}: detail names its field ${detail.field}: ${detail.message}`)
    t.match(detail.message, /\b(got|remove it|missing)\b/, `${where}: detail says what was given: ${detail.message}`)
  }
}

const iso = (ms: number): string => new Date(ms).toISOString()
const good = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ id: 'e1', ticker: 'AAPL', timestamp: iso(Date.now()), score: 0.1, source: 'tiingo', ...over })

t.test('every default message in the catalogue reads plainly', async (t) => {
  for (const [code, { message }] of Object.entries(ERRORS)) checkReadable(t, code, message)
})

t.test('HTTP error paths', async (t) => {
  const p = await startTestPulse(t)
  const raw = async (path: string, init: RequestInit): Promise<{ status: number, body: ErrorBody, headers: Headers }> => {
    const res = await fetch(`${p.url}${path}`, init)
    return { status: res.status, headers: res.headers, body: await res.json() as ErrorBody }
  }
  const auth = { authorization: `Bearer ${TEST_INGEST_KEY}` }

  t.test('ingest item validation, one detail per problem', async (t) => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['ticker pattern', good({ ticker: 'aapl' }), 'ticker'],
      ['unknown ticker', good({ ticker: 'ZZZZ' }), 'ticker'],
      ['timestamp pattern', good({ timestamp: 'yesterday' }), 'timestamp'],
      ['timestamp without zone', good({ timestamp: '2025-12-21T10:35:00' }), 'timestamp'],
      ['impossible date', good({ timestamp: '2025-13-45T10:35:00Z' }), 'timestamp'],
      ['future', good({ timestamp: iso(Date.now() + 3_600_000) }), 'timestamp'],
      ['missing timestamp', good({ timestamp: undefined }), 'timestamp'],
      ['source pattern', good({ source: 'Tiingo News' }), 'source'],
      ['id with control character', good({ id: 'a\u0001b' }), 'id'],
      ['empty id', good({ id: '' }), 'id'],
      ['long id', good({ id: 'x'.repeat(200) }), 'id'],
      ['score out of range', good({ score: 3 }), 'score'],
      ['score a string', good({ score: 'high' }), 'score'],
      ['no score, no text', good({ score: undefined }), 'score'],
      ['label not a label', good({ label: 'great' }), 'label'],
      ['text not a string', good({ text: 5 }), 'text'],
      ['text too long', good({ text: 'é'.repeat(3000) }), 'text'],
      ['unknown field', good({ colour: 'red' }), 'colour']
    ]
    for (const [what, item, field] of cases) {
      const res = await p.post([good({ id: 'ok' }), item])
      checkBody(t, what, res.status, res.body, { status: 400, code: 'PULSE_ERR_VALIDATION' })
      t.ok(res.body.error.details?.some((d: { index: number, field: string }) => d.index === 1 && d.field === field), `${what}: detail for ${field} of item 1`)
    }
    const notObject = await p.post(['AAPL'])
    checkBody(t, 'item not an object', notObject.status, notObject.body, { status: 400, code: 'PULSE_ERR_VALIDATION' })
    const tooOld = await p.post([good({ timestamp: iso(Date.now() - 100 * 86_400_000) })])
    checkBody(t, 'too old', tooOld.status, tooOld.body, { status: 400, code: 'PULSE_ERR_ITEM_TOO_OLD' })
  })

  t.test('ingest bodies', async (t) => {
    const malformed = await p.post('[{"id": oops}]')
    checkBody(t, 'malformed JSON', malformed.status, malformed.body, { status: 400, code: 'PULSE_ERR_MALFORMED_BODY' })
    const empty = await p.post('')
    checkBody(t, 'empty JSON body', empty.status, empty.body, { status: 400, code: 'PULSE_ERR_MALFORMED_BODY' })
    const ndjson = await p.post('{"id":"x"}\n{oops is not valid JSON\n', { 'content-type': 'application/x-ndjson' })
    checkBody(t, 'NDJSON line', ndjson.status, ndjson.body, { status: 400, code: 'PULSE_ERR_MALFORMED_BODY' })
    t.match(ndjson.body.error.message, /line 2/, 'NDJSON names the line')
    const object = await p.post({ items: [] })
    checkBody(t, 'not an array', object.status, object.body, { status: 400, code: 'PULSE_ERR_VALIDATION' })
    const none = await p.post([])
    checkBody(t, 'empty batch', none.status, none.body, { status: 400, code: 'PULSE_ERR_EMPTY_BATCH' })
    const many = await p.post(Array.from({ length: 1001 }, (_, i) => good({ id: `m${i}` })))
    checkBody(t, 'too many items', many.status, many.body, { status: 400, code: 'PULSE_ERR_BATCH_TOO_LARGE' })
    const huge = await p.post(JSON.stringify([good({ text: 'x'.repeat(1_100_000) })]))
    checkBody(t, 'body too large', huge.status, huge.body, { status: 413, code: 'PULSE_ERR_BODY_TOO_LARGE' })
    const media = await raw('/api/v2/items', { method: 'POST', headers: { ...auth, 'content-type': 'text/csv' }, body: 'a,b' })
    checkBody(t, 'media type', media.status, media.body, { status: 415, code: 'PULSE_ERR_UNSUPPORTED_MEDIA_TYPE' })
    const noKey = await raw('/api/v2/items', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' })
    checkBody(t, 'no key', noKey.status, noKey.body, { status: 401, code: 'PULSE_ERR_UNAUTHORIZED' })
  })

  t.test('a known route with the wrong method is 405 with Allow', async (t) => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      const res = await raw('/api/v2/items', { method, headers: auth })
      checkBody(t, `${method} /api/v2/items`, res.status, res.body, { status: 405, code: 'PULSE_ERR_METHOD_NOT_ALLOWED' })
      t.equal(res.headers.get('allow'), 'POST', `${method}: Allow: POST`)
    }
    const unknown = await raw('/api/v2/nothing', {})
    checkBody(t, 'unknown route', unknown.status, unknown.body, { status: 404, code: 'PULSE_ERR_NOT_FOUND' })
  })

  t.test('history', async (t) => {
    const cases: Array<[string, string, number, string]> = [
      ['unknown ticker', '/api/v2/timeseries/ZZZZ?resolution=1m', 404, 'PULSE_ERR_UNKNOWN_TICKER'],
      ['missing resolution', '/api/v2/timeseries/AAPL', 400, 'PULSE_ERR_BAD_RESOLUTION'],
      ['bad resolution', '/api/v2/timeseries/AAPL?resolution=2m', 400, 'PULSE_ERR_BAD_RESOLUTION'],
      ['bad start', '/api/v2/timeseries/AAPL?resolution=1m&start=yesterday', 400, 'PULSE_ERR_BAD_RANGE'],
      ['start after end', `/api/v2/timeseries/AAPL?resolution=1m&start=${iso(Date.now())}&end=${iso(Date.now() - 60_000)}`, 400, 'PULSE_ERR_BAD_RANGE'],
      ['start twice', '/api/v2/timeseries/AAPL?resolution=1m&start=2025-01-01T00:00:00Z&start=2025-01-01T00:00:00Z', 400, 'PULSE_ERR_BAD_RANGE'],
      ['export format', '/api/v2/timeseries/AAPL/export?resolution=1m&format=xlsx', 400, 'PULSE_ERR_BAD_FORMAT'],
      ['export outside retention', '/api/v2/timeseries/AAPL/export?resolution=1m&start=2020-01-01T00:00:00Z&end=2020-01-02T00:00:00Z', 400, 'PULSE_ERR_OUTSIDE_RETENTION']
    ]
    for (const [what, path, status, code] of cases) {
      const res = await p.get(path)
      checkBody(t, what, res.status, res.body, { status, code })
    }
  })
})

t.test('access errors', async (t) => {
  const p = await startTestPulse(t, { READ_TOKEN: 'read-secret-0123456789', METRICS_TOKEN: 'metrics-secret-0123456789', ALLOWED_ORIGINS: 'https://ok.example', RATE_LIMIT_READ: '1' })
  const read = await p.get('/api/v2/tickers')
  checkBody(t, 'read token', read.status, read.body, { status: 401, code: 'PULSE_ERR_UNAUTHORIZED' })
  const metrics = await p.get('/metrics')
  checkBody(t, 'metrics token', metrics.status, metrics.body, { status: 401, code: 'PULSE_ERR_UNAUTHORIZED' })
  const headers = { authorization: 'Bearer read-secret-0123456789' }
  await p.get('/api/v2/timeseries/AAPL?resolution=1m', headers)
  const limited = await p.get('/api/v2/timeseries/AAPL?resolution=1m', headers)
  checkBody(t, 'rate limit', limited.status, limited.body, { status: 429, code: 'PULSE_ERR_RATE_LIMITED' })
})

t.test('WebSocket messages', async (t) => {
  const p = await startTestPulse(t)
  const client = await WsTestClient.open(p.url)
  t.teardown(() => client.close())
  const messages: Array<[string, unknown, string]> = [
    ['not JSON', '{oops', 'PULSE_ERR_BAD_MESSAGE'],
    ['unknown op', { op: 'dance' }, 'PULSE_ERR_BAD_MESSAGE'],
    ['tickers missing', { op: 'subscribe', resolutions: ['1m'] }, 'PULSE_ERR_BAD_MESSAGE'],
    ['tickers not a list', { op: 'subscribe', tickers: 'AAPL', resolutions: ['1m'] }, 'PULSE_ERR_BAD_MESSAGE'],
    ['empty tickers', { op: 'subscribe', tickers: [], resolutions: ['1m'] }, 'PULSE_ERR_BAD_MESSAGE'],
    ['long ticker', { op: 'subscribe', tickers: ['A'.repeat(40)], resolutions: ['1m'] }, 'PULSE_ERR_BAD_MESSAGE'],
    ['unknown field', { op: 'ping', extra: 1 }, 'PULSE_ERR_BAD_MESSAGE'],
    ['unknown ticker', { op: 'subscribe', tickers: ['ZZZZ'], resolutions: ['1m'] }, 'PULSE_ERR_UNKNOWN_TICKER'],
    ['bad resolution', { op: 'subscribe', tickers: ['AAPL'], resolutions: ['2m'] }, 'PULSE_ERR_BAD_RESOLUTION'],
    ['bad position', { op: 'subscribe', tickers: ['AAPL'], resolutions: ['1m'], positions: { 'AAPL#1m': 'yesterday' } }, 'PULSE_ERR_BAD_MESSAGE'],
    ['snapshot unknown ticker', { op: 'snapshot', id: 'r1', ticker: 'ZZZZ', resolution: '1m' }, 'PULSE_ERR_UNKNOWN_TICKER'],
    ['snapshot bad resolution', { op: 'snapshot', id: 'r2', ticker: 'AAPL', resolution: '2m' }, 'PULSE_ERR_BAD_RESOLUTION'],
    ['snapshot bad range', { op: 'snapshot', id: 'r3', ticker: 'AAPL', resolution: '1m', start: 'yesterday' }, 'PULSE_ERR_BAD_RANGE'],
    ['snapshot range too large', { op: 'snapshot', id: 'r4', ticker: 'AAPL', resolution: '1m', start: iso(Date.now() - 30 * 86_400_000) }, 'PULSE_ERR_RANGE_TOO_LARGE']
  ]
  for (const [what, message, code] of messages) {
    const before = client.state.of('error').length
    client.send(message)
    await until(() => client.state.of('error').length > before, 10_000, `error for ${what}`)
    const error = client.state.of('error')[before]
    t.equal(error?.code, code, `${what}: code`)
    checkReadable(t, `WS ${what}`, error?.message)
  }
})
