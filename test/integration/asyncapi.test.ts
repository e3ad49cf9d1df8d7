import { DiagnosticSeverity, Parser } from '@asyncapi/parser'
import t from 'tap'
import { asyncApiDocument, CLIENT_MESSAGES, SSE_EVENTS } from '../../services/gateway/asyncapi.js'
import { ClientMessageSchema, ServerEvents } from '../../services/gateway/streaming/protocol.js'
import { startTestPulse } from '../helpers/pulse.js'

/** Every `op` the WebSocket accepts, read from the validated union itself. */
const knownOps = ClientMessageSchema.anyOf.map((schema) => schema.properties.op.const as string)

t.test('/docs/asyncapi.json is a valid AsyncAPI 3 document covering every message the code knows', async (t) => {
  const p = await startTestPulse(t)
  const res = await fetch(`${p.url}/docs/asyncapi.json`)
  t.equal(res.status, 200)
  const served = await res.json() as Record<string, unknown>
  t.same(served, asyncApiDocument(new URL(p.url).host), 'served as built from the protocol schemas')

  const { document, diagnostics } = await new Parser().parse(JSON.stringify(served))
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error)
  t.same(errors.map((d) => `${d.path.join('.')}: ${d.message}`), [], 'no validation errors')
  t.ok(document, 'the parser builds a document')
  if (document === undefined) return
  t.equal(document.version(), '3.0.0')

  const ws = document.channels().get('websocket')
  const sse = document.channels().get('sse')
  t.equal(ws?.address(), '/api/v2/ws')
  t.equal(sse?.address(), '/api/v2/stream')
  const names = (channel: typeof ws): string[] => channel?.messages().all().map((m) => m.name() ?? '') ?? []

  t.same(Object.keys(CLIENT_MESSAGES).sort(), [...knownOps].sort(), 'the document lists exactly the ops the gateway accepts')
  for (const op of knownOps) t.ok(names(ws).includes(op), `client message ${op} on the WebSocket`)
  for (const type of Object.keys(ServerEvents)) t.ok(names(ws).includes(type), `server event ${type} on the WebSocket`)
  for (const type of SSE_EVENTS) t.ok(names(sse).includes(type), `server event ${type} on SSE`)

  const subscribe = ws?.messages().all().find((m) => m.name() === 'subscribe')
  t.same(subscribe?.payload()?.required(), ['op', 'tickers', 'resolutions'], 'payloads carry the validated schema')
  const ssePartial = sse?.messages().all().find((m) => m.name() === 'partial_bucket')
  t.notOk(Object.keys(ssePartial?.payload()?.properties() ?? {}).includes('type'), 'SSE data leaves type to the event: line')

  const operations = document.operations().all().map((o) => `${o.action()}:${o.channels().all()[0]?.address() ?? ''}`).sort()
  t.same(operations, ['receive:/api/v2/ws', 'send:/api/v2/stream', 'send:/api/v2/ws'], 'the gateway receives client messages and sends events')
})

t.test('/docs links the AsyncAPI document and lists the WebSocket upgrade', async (t) => {
  const p = await startTestPulse(t)
  const openapi = (await p.get('/docs/json')).body
  t.match(openapi.info.description, '/docs/asyncapi.json', 'the OpenAPI description links the AsyncAPI document')
  t.ok(openapi.paths['/api/v2/ws']?.get, 'GET /api/v2/ws is listed')
  t.ok(openapi.paths['/api/v2/stream']?.get, 'GET /api/v2/stream is listed')
  t.ok(openapi.paths['/docs/asyncapi.json']?.get, 'the AsyncAPI route is listed')
})
