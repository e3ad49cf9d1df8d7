import helmet from '@fastify/helmet'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * The Content-Security-Policy of the dashboard: scripts and connections from this origin
 * only (`'self'` covers the same-origin WebSocket), no inline or injected script, no
 * plugins, no framing by other sites. Inline styles are allowed: Lit's style bindings and
 * the chart library's attribution write them at run time, and a style cannot run code.
 * Plain HTTP stays plain (no `upgrade-insecure-requests`): a local or internal deployment
 * may have no TLS.
 */
export const CONTENT_SECURITY_POLICY: Record<string, string[]> = {
  'default-src': ["'self'"],
  'base-uri': ["'self'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'", "'unsafe-inline'"],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'", 'data:'],
  'connect-src': ["'self'"],
  'object-src': ["'none'"],
  'frame-ancestors': ["'none'"],
  'form-action': ["'self'"]
}

async function securityHeaders (app: FastifyInstance): Promise<void> {
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: CONTENT_SECURITY_POLICY },
    frameguard: { action: 'deny' },
    // The API is read cross-origin by dashboards elsewhere (CORS decides who may).
    crossOriginResourcePolicy: { policy: 'cross-origin' }
  })
}

/** Security headers (`@fastify/helmet`) on every response, with the dashboard's CSP. */
export default fp(securityHeaders, { name: 'pulse-security-headers', fastify: '5.x' })
