import type { FastifyError, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { type ErrorCode, errorBody, PulseError } from '../../../shared/errors.js'
import { type AjvError, fromAjv, quoteValue, violationMessage } from '../../../shared/validation-messages.js'

/** Why Fastify's body parser refused a body, in place of its own terse text. */
const MALFORMED_BODY_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_EMPTY_JSON_BODY: 'The body must be JSON, as its Content-Type application/json says; got an empty body',
  FST_ERR_CTP_INVALID_JSON_BODY: 'The body must be JSON, as its Content-Type application/json says; got text that cannot be parsed as JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'The body must be as long as its Content-Length header says; got a different length'
}

/** Maps Fastify's own errors (body parsing, limits) onto the Pulse catalogue. */
function codeForFastifyError (err: FastifyError): ErrorCode {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return 'PULSE_ERR_BODY_TOO_LARGE'
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return 'PULSE_ERR_UNSUPPORTED_MEDIA_TYPE'
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'PULSE_ERR_MALFORMED_BODY'
  }
  if (err.validation !== undefined) return 'PULSE_ERR_VALIDATION'
  if (err.statusCode === 429) return 'PULSE_ERR_RATE_LIMITED'
  if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return 'PULSE_ERR_MALFORMED_BODY'
  if (err.statusCode === 413) return 'PULSE_ERR_BODY_TOO_LARGE'
  if (err.statusCode === 415) return 'PULSE_ERR_UNSUPPORTED_MEDIA_TYPE'
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) return 'PULSE_ERR_VALIDATION'
  return 'PULSE_ERR_INTERNAL'
}

/** Every error leaves as `{"error":{"code","message","details"?}}` with its catalogue status. */
async function errorHandler (app: FastifyInstance): Promise<void> {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof PulseError) {
      return reply.code(err.status).send(errorBody(err.code, err.message, err.details))
    }
    const code = codeForFastifyError(err)
    if (code === 'PULSE_ERR_INTERNAL') {
      request.log.error({ err }, 'request failed')
      return reply.code(500).send(errorBody(code))
    }
    const status = err.statusCode ?? 400
    if (code === 'PULSE_ERR_VALIDATION' && err.validation !== undefined) {
      const context = err.validationContext ?? 'body'
      const data: unknown = (request as unknown as Record<string, unknown>)[context]
      const details = err.validation.map((v) => {
        const violation = fromAjv(v as AjvError, data)
        return { field: violation.field || context, message: violationMessage(violation, `the ${context}`) }
      })
      const first = details[0]?.message ?? `the ${context} is invalid`
      return reply.code(400).send(errorBody(code, `${first[0]?.toUpperCase() ?? ''}${first.slice(1)}`, details))
    }
    const message = code === 'PULSE_ERR_MALFORMED_BODY' ? (MALFORMED_BODY_MESSAGES[err.code] ?? MALFORMED_BODY_MESSAGES.FST_ERR_CTP_INVALID_JSON_BODY) : undefined
    return reply.code(status >= 400 && status < 500 ? status : 400).send(errorBody(code, message))
  })
  app.setNotFoundHandler((request, reply) => {
    return reply.code(404).send(errorBody('PULSE_ERR_NOT_FOUND', `There is no route ${request.method} ${quoteValue(request.url.split('?')[0] ?? '')}; /docs lists them`))
  })
}

export default fp(errorHandler, { name: 'pulse-error-handler', fastify: '5.x' })
