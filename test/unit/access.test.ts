import t from 'tap'
import { Entitlement, EntitlementClaimError } from '../../services/gateway/access/entitlement.js'
import { outOfScope, ProducerKeys } from '../../services/gateway/access/producers.js'
import { MemoryTicketStore, TICKET_TTL_MS } from '../../services/gateway/access/stream-tickets.js'
import { ConfigError, loadConfig, parseIngestKeys } from '../../shared/config/config.js'

t.test('entitlement patterns', async (t) => {
  const e = Entitlement.fromClaims({ tickers: ['AAPL', 'TECH.*', 'B*X'] })
  t.ok(e.allowsTicker('AAPL'), 'a listed name')
  t.ok(e.allowsTicker('TECH.A') && e.allowsTicker('TECH.AB'), 'TECH.* matches TECH.A and TECH.AB')
  t.notOk(e.allowsTicker('TECHA'), 'the dot in TECH.* is literal')
  t.notOk(e.allowsTicker('AAPLX') || e.allowsTicker('XAAPL'), 'names match whole')
  t.ok(e.allowsTicker('BOX') && e.allowsTicker('BX'), 'B*X: * matches any run, even an empty one')
  t.notOk(e.allowsTicker('MSFT'), 'anything else is refused')
  t.ok(Entitlement.fromClaims({ tickers: '*' }).allowsTicker('ANY.T'), '"*" allows every ticker')
  const narrow = Entitlement.fromClaims({ tickers: '*', resolutions: ['1h'] })
  t.ok(narrow.allows('AAPL', '1h'))
  t.notOk(narrow.allows('AAPL', '1m'), 'resolutions narrow')
  t.same(narrow.split(['AAPL#1h', 'AAPL#1m']), { allowed: ['AAPL#1h'], denied: ['AAPL#1m'] })
  for (const claims of [{}, { tickers: 'AAPL' }, { tickers: [1] }, { tickers: ['a(b'] }, { tickers: Array(1001).fill('A') }, { tickers: '*', resolutions: ['2m'] }, { tickers: '*', resolutions: '1m' }]) {
    t.throws(() => Entitlement.fromClaims(claims), EntitlementClaimError, `refused: ${JSON.stringify(claims).slice(0, 60)}`)
  }
})

t.test('INGEST_API_KEY: bare keys keep working; name:key:tickers:rate scopes a producer', async (t) => {
  t.same(parseIngestKeys('first-key-0123456789,second-key-0123456789').map((p) => [p.name, p.key, p.tickers, p.batchesPerMinute]), [
    ['key-1', 'first-key-0123456789', undefined, undefined],
    ['key-2', 'second-key-0123456789', undefined, undefined]
  ])
  t.same(parseIngestKeys('feed-a:feed-key-0123456789:AAPL|TECH.*:120, wire:wire-key-0123456789, all:all-key-0123456789:*:5').map((p) => [p.name, p.tickers, p.batchesPerMinute]), [
    ['feed-a', ['AAPL', 'TECH.*'], 120],
    ['wire', undefined, undefined],
    ['all', undefined, 5]
  ])
  for (const bad of ['a:short', 'bad name:key-0123456789abcdef', 'a:key-0123456789abcdef:aapl', 'a:key-0123456789abcdef:AAPL:0', 'a:key-0123456789abcdef:AAPL:x', 'a:k-0123456789abcdef:A:1:extra', 'a:key-0123456789abcdef,a:key-abcdef0123456789']) {
    t.throws(() => parseIngestKeys(bad), ConfigError, `refused: ${bad}`)
  }
  const keys = new ProducerKeys(parseIngestKeys('feed-a:feed-key-0123456789:AAPL|TECH.*,legacy-key-0123456789'))
  t.equal(keys.identify('feed-key-0123456789')?.name, 'feed-a')
  t.equal(keys.identify('legacy-key-0123456789')?.name, 'key-2')
  t.equal(keys.identify('feed-key-012345678'), undefined, 'a prefix is no key')
  const feed = keys.identify('feed-key-0123456789')
  if (feed === undefined) return
  t.same(outOfScope(feed, [{ ticker: 'AAPL' }, { ticker: 'MSFT' }, { ticker: 'TECH.Z' }]), [{ index: 1, ticker: 'MSFT' }])
})

t.test('JWT settings', async (t) => {
  t.same(loadConfig({ JWT_SECRET: 'x'.repeat(32), JWT_ISSUER: 'iss' }).jwt, { secret: 'x'.repeat(32), jwksUrl: undefined, issuer: 'iss', audience: undefined })
  t.equal(loadConfig({}).jwt, undefined, 'no settings: no JWTs')
  t.throws(() => loadConfig({ JWT_SECRET: 'short' }), /JWT_SECRET/, 'an HS256 secret needs 32 characters')
  t.throws(() => loadConfig({ JWT_AUDIENCE: 'pulse' }), /need JWT_SECRET or JWKS_URL/, 'an audience without a key source')
  t.throws(() => loadConfig({ JWKS_URL: 'ftp://x' }), /JWKS_URL/)
})

t.test('stream tickets: single use, void after 30 s', async (t) => {
  const store = new MemoryTicketStore()
  const reader = { subject: 'alice', entitlement: Entitlement.everything, expiresAt: undefined }
  const { ticket, expiresAt } = await store.issue(reader, 1000)
  t.equal(expiresAt, 1000 + TICKET_TTL_MS)
  t.equal((await store.redeem(ticket, 2000))?.subject, 'alice', 'redeemed once')
  t.equal(await store.redeem(ticket, 2000), undefined, 'not twice')
  const late = await store.issue(reader, 1000)
  t.equal(await store.redeem(late.ticket, 1000 + TICKET_TTL_MS), undefined, 'not after its 30 s')
  t.equal(await store.redeem('made-up', 1000), undefined, 'an unknown ticket is nothing')
})
