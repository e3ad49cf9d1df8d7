import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import t from 'tap'
import { fromAjv, fromTypeBox, quoteValue, violationMessage } from '../../shared/validation-messages.js'

const first = (schema: Parameters<typeof TypeCompiler.Compile>[0], value: unknown): string => {
  const error = TypeCompiler.Compile(schema).Errors(value).First()
  if (error === undefined) throw new Error('expected a violation')
  return violationMessage(fromTypeBox(error), 'the message')
}

t.test('TypeBox violations: field, expectation, what was given', async (t) => {
  const schema = Type.Object({
    code: Type.String({ pattern: '^[A-Z]{3}$', description: 'three capital letters' }),
    name: Type.Optional(Type.String({ pattern: '^[a-z]+$' })),
    size: Type.Optional(Type.Integer({ minimum: 1, maximum: 9 })),
    low: Type.Optional(Type.Number({ minimum: 0 })),
    tags: Type.Optional(Type.Array(Type.String({ maxLength: 4 }), { minItems: 1, maxItems: 3 })),
    kind: Type.Optional(Type.Union([Type.Literal('a'), Type.Literal('b')])),
    note: Type.Optional(Type.String({ minLength: 2, maxLength: 5 }))
  }, { additionalProperties: false })
  t.equal(first(schema, {}), 'code is required but missing; it must be three capital letters')
  t.equal(first(schema, { code: 'abc' }), 'code must be three capital letters; got "abc"')
  t.equal(first(schema, { code: 'ABC', name: 'X1' }), 'name must be a string in the format documented for name; got "X1"')
  t.equal(first(schema, { code: 'ABC', size: 12 }), 'size must be a number from 1 to 9; got 12')
  t.equal(first(schema, { code: 'ABC', size: 'big' }), 'size must be an integer; got "big"')
  t.equal(first(schema, { code: 'ABC', low: -1 }), 'low must be a number of at least 0; got -1')
  t.equal(first(schema, { code: 'ABC', tags: [] }), 'tags must be a list of 1–3 entries; got an array of 0 entries')
  t.equal(first(schema, { code: 'ABC', tags: ['toolong'] }), 'tags.0 must be at most 4 characters long; got 7 characters')
  t.equal(first(schema, { code: 'ABC', kind: 'c' }), 'kind must be one of a, b; got "c"')
  t.equal(first(schema, { code: 'ABC', note: 'x' }), 'note must be 2–5 characters long; got 1 character')
  t.equal(first(schema, { code: 'ABC', extra: true }), 'extra is not a field of the message; remove it (got true)')
  t.equal(first(schema, 'text'), 'the message must be an object; got "text"')
})

t.test('Ajv violations read the same, with the value taken from the data', async (t) => {
  const data = { resolution: '2m', count: 0 }
  t.equal(violationMessage(fromAjv({ instancePath: '', keyword: 'required', params: { missingProperty: 'ticker' } }, data), 'the query'), 'ticker is required but missing')
  t.equal(violationMessage(fromAjv({ instancePath: '/count', keyword: 'minimum', params: { comparison: '>=', limit: 1 } }, data)), 'count must be a number of at least 1; got 0')
  t.equal(violationMessage(fromAjv({ instancePath: '/resolution', keyword: 'enum', params: { allowedValues: ['1m', '5m'] } }, data)), 'resolution must be one of 1m, 5m; got "2m"')
  t.equal(violationMessage(fromAjv({ instancePath: '/resolution', keyword: 'pattern', params: { pattern: '^\\d+m$' } }, data)), 'resolution must be a string in the format documented for resolution; got "2m"')
  t.equal(violationMessage(fromAjv({ instancePath: '', keyword: 'additionalProperties', params: { additionalProperty: 'x' } }, { x: 1 }), 'the body'), 'x is not a field of the body; remove it (got 1)')
})

t.test('quoted values are short and never echo whole structures', async (t) => {
  t.equal(quoteValue(undefined), 'nothing')
  t.equal(quoteValue({ a: 1 }), 'an object')
  t.equal(quoteValue([1]), 'an array of 1 entry')
  t.equal(quoteValue('x'.repeat(100)), `"${'x'.repeat(39)}…" (100 characters)`)
})
