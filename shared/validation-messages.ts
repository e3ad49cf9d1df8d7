/**
 * One way to say what is wrong with a value that failed a schema, for every validator Pulse
 * runs (TypeBox for items and stream messages, Ajv for Fastify route schemas): a plain
 * sentence that names the field, what was expected and what was given, e.g.
 * `timestamp must be an ISO 8601 time with zone, like 2025-12-21T10:35:00Z; got "yesterday"`
 *
 * Regular expressions never reach a message: a string schema with a `pattern` states its
 * format in its `description`, written to read as an expectation ("a ticker symbol: …").
 */
import type { TSchema } from '@sinclair/typebox'
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors'

/** A failed check, whichever validator found it. */
export interface Violation {
  /** Where the value sits, as a dotted path (`tickers.0`); empty for the value itself. */
  field: string
  /** Which rule failed. */
  rule: 'missing' | 'unknown-field' | 'type' | 'format' | 'range' | 'length' | 'choice' | 'count' | 'other'
  /** The schema of the failing value, when the validator gives it. */
  schema?: Record<string, unknown>
  /** Limits or choices the validator reports beside the schema. */
  params?: Record<string, unknown>
  value: unknown
}

/** How much of a given value a message quotes. */
const MAX_QUOTED = 40

/** `value` as a short JSON quote: long strings and structures are cut. */
export function quoteValue (value: unknown): string {
  if (value === undefined) return 'nothing'
  if (Array.isArray(value)) return `an array of ${value.length} ${value.length === 1 ? 'entry' : 'entries'}`
  if (typeof value === 'object' && value !== null) return 'an object'
  const text = typeof value === 'number' && !Number.isFinite(value) ? String(value) : JSON.stringify(value)
  return text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}…" (${String(value).length} characters)` : text
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'true or false',
  array: 'an array',
  object: 'an object',
  null: 'null'
}

function typeName (schema: Record<string, unknown> | undefined): string {
  const type = schema?.type
  if (Array.isArray(type)) return type.map((t) => TYPE_NAMES[String(t)] ?? String(t)).join(' or ')
  return TYPE_NAMES[String(type)] ?? 'a valid value'
}

/** The literal choices of a union of literals (TypeBox `Union([Literal…])`, `enum`, `const`). */
function choicesOf (schema: Record<string, unknown> | undefined, params: Record<string, unknown> | undefined): unknown[] | undefined {
  const anyOf = schema?.anyOf
  if (Array.isArray(anyOf) && anyOf.every((s) => typeof s === 'object' && s !== null && 'const' in s)) return anyOf.map((s) => (s as { const: unknown }).const)
  if (Array.isArray(schema?.enum)) return schema.enum
  if (schema !== undefined && 'const' in schema) return [schema.const]
  if (Array.isArray(params?.allowedValues)) return params.allowedValues
  if (params !== undefined && 'allowedValue' in params) return [params.allowedValue]
  return undefined
}

function numberOr (...values: unknown[]): number | undefined {
  for (const v of values) if (typeof v === 'number') return v
  return undefined
}

/** What the failing rule expected, as the rest of "`field` must be …". */
function expectation (v: Violation): string {
  const { schema, params } = v
  const description = typeof schema?.description === 'string' ? schema.description : undefined
  switch (v.rule) {
    case 'missing': return description === undefined ? 'given' : `given (${description})`
    case 'type': return typeName(schema)
    case 'format': return description ?? `a string in the format documented for ${v.field === '' ? 'it' : v.field}`
    case 'choice': {
      const choices = choicesOf(schema, params)
      return choices === undefined ? (description ?? 'one of the documented values') : `one of ${choices.map(String).join(', ')}`
    }
    case 'range': {
      const min = numberOr(schema?.minimum, schema?.exclusiveMinimum)
      const max = numberOr(schema?.maximum, schema?.exclusiveMaximum)
      if (min !== undefined && max !== undefined) return `a number from ${min} to ${max}`
      if (min !== undefined) return `a number of at least ${min}`
      return max === undefined ? 'a number in the allowed range' : `a number of at most ${max}`
    }
    case 'length': {
      const min = numberOr(schema?.minLength)
      const max = numberOr(schema?.maxLength)
      if (min !== undefined && max !== undefined) return `${min}–${max} characters long`
      if (max !== undefined) return `at most ${max} characters long`
      return `at least ${min ?? 1} ${min === 1 ? 'character' : 'characters'} long`
    }
    case 'count': {
      const min = numberOr(schema?.minItems)
      const max = numberOr(schema?.maxItems)
      if (min !== undefined && max !== undefined) return `a list of ${min}–${max} entries`
      if (max !== undefined) return `a list of at most ${max} entries`
      return `a list of at least ${min ?? 1} ${min === 1 ? 'entry' : 'entries'}`
    }
    default: return description ?? 'a valid value'
  }
}

/** What was given, as the end of the sentence. */
function given (v: Violation): string {
  if (v.rule === 'length' && typeof v.value === 'string') return `got ${v.value.length} ${v.value.length === 1 ? 'character' : 'characters'}`
  return `got ${quoteValue(v.value)}`
}

/** The one sentence Pulse says about a violation; `subject` names the whole value (e.g. `the item`). */
export function violationMessage (v: Violation, subject = 'the value'): string {
  const name = v.field === '' ? subject : v.field
  if (v.rule === 'missing') return `${name} is required but missing${v.schema?.description === undefined ? '' : `; it must be ${String(v.schema.description)}`}`
  if (v.rule === 'unknown-field') return `${name} is not a field of ${subject}; remove it (got ${quoteValue(v.value)})`
  return `${name} must be ${expectation(v)}; ${given(v)}`
}

const TYPEBOX_RULES: Partial<Record<ValueErrorType, Violation['rule']>> = {
  [ValueErrorType.ObjectRequiredProperty]: 'missing',
  [ValueErrorType.ObjectAdditionalProperties]: 'unknown-field',
  [ValueErrorType.String]: 'type',
  [ValueErrorType.Number]: 'type',
  [ValueErrorType.Integer]: 'type',
  [ValueErrorType.Boolean]: 'type',
  [ValueErrorType.Array]: 'type',
  [ValueErrorType.Object]: 'type',
  [ValueErrorType.Null]: 'type',
  [ValueErrorType.StringPattern]: 'format',
  [ValueErrorType.StringFormat]: 'format',
  [ValueErrorType.StringFormatUnknown]: 'format',
  [ValueErrorType.StringMinLength]: 'length',
  [ValueErrorType.StringMaxLength]: 'length',
  [ValueErrorType.NumberMinimum]: 'range',
  [ValueErrorType.NumberMaximum]: 'range',
  [ValueErrorType.NumberExclusiveMinimum]: 'range',
  [ValueErrorType.NumberExclusiveMaximum]: 'range',
  [ValueErrorType.IntegerMinimum]: 'range',
  [ValueErrorType.IntegerMaximum]: 'range',
  [ValueErrorType.IntegerExclusiveMinimum]: 'range',
  [ValueErrorType.IntegerExclusiveMaximum]: 'range',
  [ValueErrorType.Union]: 'choice',
  [ValueErrorType.Literal]: 'choice',
  [ValueErrorType.ArrayMinItems]: 'count',
  [ValueErrorType.ArrayMaxItems]: 'count'
}

/** A TypeBox `ValueError` (from `TypeCompiler.Compile(s).Errors(v)`) as a violation. */
export function fromTypeBox (error: ValueError): Violation {
  return {
    field: error.path.replace(/^\//, '').replaceAll('/', '.'),
    rule: TYPEBOX_RULES[error.type] ?? 'other',
    schema: error.schema as TSchema as Record<string, unknown>,
    value: error.value
  }
}

/** The subset of an Ajv `ErrorObject` the message needs (Fastify's `error.validation` entries). */
export interface AjvError {
  instancePath: string
  keyword: string
  params: Record<string, unknown>
  schema?: unknown
  parentSchema?: Record<string, unknown>
}

const AJV_RULES: Record<string, Violation['rule']> = {
  required: 'missing',
  additionalProperties: 'unknown-field',
  type: 'type',
  pattern: 'format',
  format: 'format',
  minLength: 'length',
  maxLength: 'length',
  minimum: 'range',
  maximum: 'range',
  exclusiveMinimum: 'range',
  exclusiveMaximum: 'range',
  enum: 'choice',
  const: 'choice',
  anyOf: 'choice',
  minItems: 'count',
  maxItems: 'count'
}

/** An Ajv error as a violation; `data` is the validated value (body, querystring, …). */
export function fromAjv (error: AjvError, data: unknown): Violation {
  const segments = error.instancePath.split('/').filter((s) => s !== '')
  const extra = error.keyword === 'required' ? error.params.missingProperty : error.keyword === 'additionalProperties' ? error.params.additionalProperty : undefined
  if (typeof extra === 'string') segments.push(extra)
  let value: unknown = data
  for (const segment of segments) value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[segment] : undefined
  // Without Ajv's `verbose` option there is no parent schema: the limit in `params` stands in.
  const schema = error.parentSchema ?? ('limit' in error.params ? { [error.keyword]: error.params.limit } : 'type' in error.params ? { type: error.params.type } : {})
  return { field: segments.join('.'), rule: AJV_RULES[error.keyword] ?? 'other', schema, params: error.params, value }
}
