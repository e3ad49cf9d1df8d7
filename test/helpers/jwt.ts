import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose'
import WebSocket from 'ws'

/* Test helpers for reader access: signing tokens, a JWKS server on loopback, a WebSocket client. */

/** The HS256 secret tests configure as JWT_SECRET. */
export const TEST_JWT_SECRET = 'test-jwt-secret-0123456789abcdefghijklmnop'

export interface TokenOptions {
  sub?: string
  tickers?: unknown
  resolutions?: unknown
  /** Seconds from now; default 300. */
  expiresIn?: number
  notBeforeIn?: number
  issuer?: string
  audience?: string
  /** Leave `exp` out. */
  noExp?: boolean
}

function claims (options: TokenOptions): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000)
  const body: Record<string, unknown> = { sub: options.sub ?? 'alice', tickers: options.tickers ?? '*' }
  if (options.resolutions !== undefined) body.resolutions = options.resolutions
  if (options.noExp !== true) body.exp = now + (options.expiresIn ?? 300)
  if (options.notBeforeIn !== undefined) body.nbf = now + options.notBeforeIn
  if (options.issuer !== undefined) body.iss = options.issuer
  if (options.audience !== undefined) body.aud = options.audience
  return body
}

/** An HS256 token signed with `secret`. */
export async function hsToken (options: TokenOptions = {}, secret = TEST_JWT_SECRET): Promise<string> {
  return await new SignJWT(claims(options)).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret))
}

/** A token with `alg: none` and no signature. */
export function unsignedToken (options: TokenOptions = {}): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims(options))}.`
}

/** An asymmetric signing key with its public JWK. */
export interface SigningKey {
  kid: string
  alg: 'RS256' | 'ES256'
  sign: (options?: TokenOptions) => Promise<string>
  jwk: JWK
}

export async function signingKey (kid: string, alg: 'RS256' | 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = { ...await exportJWK(publicKey), kid, alg, use: 'sig' }
  return {
    kid,
    alg,
    jwk,
    sign: async (options = {}) => await new SignJWT(claims(options)).setProtectedHeader({ alg, kid }).sign(privateKey)
  }
}

/** A JWKS endpoint on loopback whose keys a test can rotate, and whose fetches it counts. */
export interface JwksServer {
  url: string
  keys: SigningKey[]
  fetches: number
  /** Answers after this long (a slow identity provider); 0: at once. */
  delayMs: number
  /** Stops answering (connections are refused). */
  close: () => Promise<void>
}

export async function startJwksServer (keys: SigningKey[]): Promise<JwksServer> {
  const state: { keys: SigningKey[], fetches: number, delayMs: number } = { keys, fetches: 0, delayMs: 0 }
  const server: Server = createServer((_req, res) => {
    state.fetches++
    const answer = (): void => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ keys: state.keys.map((k) => k.jwk) }))
    }
    if (state.delayMs > 0) setTimeout(answer, state.delayMs).unref()
    else answer()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    get keys () { return state.keys },
    set keys (next) { state.keys = next },
    get fetches () { return state.fetches },
    get delayMs () { return state.delayMs },
    set delayMs (ms) { state.delayMs = ms },
    close: async () => await new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  }
}

/** A WebSocket test client that records every event and how the socket closed. */
export class AccessClient {
  readonly events: Array<Record<string, unknown>> = []
  closed: { code: number, reason: string } | undefined
  readonly socket: WebSocket

  private constructor (socket: WebSocket) {
    this.socket = socket
    socket.on('message', (data) => { this.events.push(JSON.parse(data.toString()) as Record<string, unknown>) })
    socket.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() } })
  }

  /** Opens `/api/v2/ws`; resolves with the client, or the HTTP status and body of a refused upgrade. */
  static async open (baseUrl: string, headers: Record<string, string> = {}, query = ''): Promise<AccessClient | { status: number, code: string | undefined }> {
    const socket = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/api/v2/ws${query}`, { headers })
    return await new Promise((resolve) => {
      socket.once('open', () => resolve(new AccessClient(socket)))
      socket.once('unexpected-response', (_req, res) => {
        let text = ''
        res.on('data', (chunk: Buffer) => { text += chunk.toString() })
        res.on('end', () => {
          let code: string | undefined
          try { code = (JSON.parse(text) as { error?: { code?: string } }).error?.code } catch {}
          resolve({ status: res.statusCode ?? 0, code })
          socket.terminate()
        })
      })
      socket.once('error', () => resolve({ status: 0, code: undefined }))
    })
  }

  send (message: unknown): void {
    this.socket.send(JSON.stringify(message))
  }

  of (type: string): Array<Record<string, unknown>> {
    return this.events.filter((e) => e.type === type)
  }

  close (): void {
    this.socket.terminate()
  }
}
