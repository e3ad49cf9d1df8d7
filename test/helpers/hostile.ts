import fc from 'fast-check'
import type { TestPulse } from './pulse.js'

/** Characters that break keys, channels, logs and parsers: `#`, `:`, `{`, newlines, controls, invalid surrogates. */
export const NASTY_CHARS = ['#', ':', '{', '}', '\n', '\r', '\t', '\u0000', '\u0007', '\u001b', '\u007f', '\u2028', '\uD800', '\uDFFF', '*', '?', '[', '"', '\\', '%', ' ', '/', '..']

/** A string that holds at least one nasty character, anywhere. */
export const nastyString = fc.tuple(fc.string({ maxLength: 12 }), fc.constantFrom(...NASTY_CHARS), fc.string({ maxLength: 12 }))
  .map(([a, c, b]) => `${a}${c}${b}`)

/** Values of the wrong type or out of range for any field. */
export const wrongValue = fc.oneof(
  fc.constant(null), fc.boolean(), fc.constant(1e308), fc.constant(-1e308), fc.constant(Number.MAX_SAFE_INTEGER),
  fc.integer(), fc.constant([]), fc.constant({}), fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 })
)

/** What the stores hold for every ticker at two resolutions: `rev:count:sum` per bucket. */
export async function storedDigest (p: TestPulse): Promise<string> {
  const parts: string[] = []
  for (const ticker of p.pulse.config.tickers) {
    for (const resolution of ['1m', '24h'] as const) {
      const buckets = await p.pulse.adapters.hot.range(ticker, resolution, 0, Date.now() + 86_400_000)
      parts.push(...buckets.map((b) => `${ticker}#${resolution}@${b.start}=${b.rev}:${b.count}:${b.sum}`))
    }
  }
  const counts = await p.pulse.adapters.queue.counts()
  return `${parts.join('|')} queue=${counts.waiting + counts.active}`
}
