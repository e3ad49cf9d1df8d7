import { type Static, Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import Sentiment from 'sentiment'
import { type Label, type ScoredItem, labelFor } from './bucket.js'
import { bucketRefsFor } from './bucket.js'
import { RETENTION_MS } from './resolutions.js'
import { fromTypeBox, quoteValue, violationMessage } from '../validation-messages.js'

export const TICKER_PATTERN = '^[A-Z][A-Z0-9.]{0,9}$'
export const SOURCE_PATTERN = '^[a-z0-9_-]{1,32}$'
/** Ids are free text, but never control characters (they would leak into logs and keys). */
export const ID_PATTERN = '^[^\\u0000-\\u001f\\u007f]{1,128}$'
const TIMESTAMP_PATTERN = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$'

const LONGEST_RETENTION_DAYS = Math.max(...Object.values(RETENTION_MS)) / 86_400_000

const analyzer = new Sentiment()

/**
 * Scores a headline or body with the AFINN-165 lexicon and squashes the raw sum into
 * [-1, 1] with tanh, so one strong word reads about ±0.6 and many saturate toward ±1.
 */
export function scoreText (text: string): number {
  const { score } = analyzer.analyze(text)
  const squashed = Math.tanh(score / 4)
  return Math.round(squashed * 1e6) / 1e6
}

/** Largest accepted `text`, in UTF-8 bytes. */
export const MAX_TEXT_BYTES = 4096
/** Items further than this in the future are rejected. */
export const MAX_FUTURE_MS = 5 * 60_000

/** An item as producers post it (SPEC §2). */
export const ItemSchema = Type.Object({
  // A patterned string's description states its format: validation messages quote it.
  id: Type.String({ minLength: 1, maxLength: 128, pattern: ID_PATTERN, description: 'text of 1–128 characters without control characters (with the ticker, the idempotency key)' }),
  ticker: Type.String({ pattern: TICKER_PATTERN, description: 'a ticker symbol: a capital letter, then up to 9 capital letters, digits or dots', examples: ['AAPL'] }),
  timestamp: Type.String({ pattern: TIMESTAMP_PATTERN, description: 'an ISO 8601 time with zone, like 2025-12-21T10:35:00Z (the event time of the article)', examples: ['2025-12-21T10:35:00Z'] }),
  score: Type.Optional(Type.Number({ minimum: -1, maximum: 1, description: 'optional only when text is given' })),
  label: Type.Optional(Type.Union([Type.Literal('positive'), Type.Literal('neutral'), Type.Literal('negative')])),
  source: Type.String({ pattern: SOURCE_PATTERN, description: 'a source name of 1–32 lower-case letters, digits, _ or -', examples: ['tiingo'] }),
  text: Type.Optional(Type.String({ maxLength: MAX_TEXT_BYTES, description: 'headline/body, scored when score is absent' }))
}, { additionalProperties: false })

export type WireItem = Static<typeof ItemSchema>

const itemCheck = TypeCompiler.Compile(ItemSchema)

/** One problem with one item of a batch. */
export interface ItemProblem {
  index: number
  field: string
  message: string
  /** Set when the problem is that the item is older than every retention. */
  tooOld?: boolean
}

export interface ItemRules {
  /** The tickers items may name. */
  tickers: { has: (ticker: string) => boolean }
  now: number
  /** Scores `text` to [-1, 1] when an item has no score. */
  scoreText: (text: string) => number
}

function fieldOf (path: string): string {
  return path.replace(/^\//, '').split('/')[0] || 'item'
}

/**
 * Validates one posted item against every rule of SPEC §2 and returns either the scored
 * item or its problems.
 */
export function checkItem (raw: unknown, index: number, rules: ItemRules): ScoredItem | ItemProblem[] {
  if (!itemCheck.Check(raw)) {
    const problems: ItemProblem[] = []
    const seen = new Set<string>()
    for (const error of itemCheck.Errors(raw)) {
      const field = fieldOf(error.path)
      if (seen.has(field)) continue
      seen.add(field)
      problems.push({ index, field, message: violationMessage(fromTypeBox(error), 'an item') })
    }
    return problems
  }
  const item = raw
  const problems: ItemProblem[] = []
  if (!rules.tickers.has(item.ticker)) problems.push({ index, field: 'ticker', message: `ticker must be one of the configured tickers; got ${quoteValue(item.ticker)}` })
  const ts = Date.parse(item.timestamp)
  if (Number.isNaN(ts)) {
    problems.push({ index, field: 'timestamp', message: `timestamp must be a real calendar time; got ${quoteValue(item.timestamp)}` })
  } else if (ts > rules.now + MAX_FUTURE_MS) {
    problems.push({ index, field: 'timestamp', message: `timestamp must be at most 5 minutes in the future; got ${quoteValue(item.timestamp)}` })
  } else if (bucketRefsFor({ ticker: item.ticker, ts }, rules.now).length === 0) {
    problems.push({ index, field: 'timestamp', message: `timestamp must be within the longest retention (${LONGEST_RETENTION_DAYS} days); got ${quoteValue(item.timestamp)}`, tooOld: true })
  }
  if (item.text !== undefined && Buffer.byteLength(item.text, 'utf8') > MAX_TEXT_BYTES) {
    problems.push({ index, field: 'text', message: `text must be at most ${MAX_TEXT_BYTES} bytes of UTF-8; got ${Buffer.byteLength(item.text, 'utf8')} bytes` })
  }
  if (item.score === undefined && item.text === undefined) {
    problems.push({ index, field: 'score', message: 'score is required when text is absent; got neither' })
  }
  if (problems.length > 0) return problems
  const score = item.score ?? rules.scoreText(item.text as string)
  const label: Label = item.label ?? labelFor(score)
  return { id: item.id, ticker: item.ticker, ts, score, label, source: item.source }
}

export type BatchCheck =
  | { ok: true, items: ScoredItem[] }
  | { ok: false, problems: ItemProblem[] }

/** Whole-batch validation: any problem rejects the batch, and every problem is reported. */
export function checkBatch (raws: readonly unknown[], rules: ItemRules): BatchCheck {
  const items: ScoredItem[] = []
  const problems: ItemProblem[] = []
  raws.forEach((raw, index) => {
    const result = checkItem(raw, index, rules)
    if (Array.isArray(result)) problems.push(...result)
    else items.push(result)
  })
  return problems.length > 0 ? { ok: false, problems } : { ok: true, items }
}
