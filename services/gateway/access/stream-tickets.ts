import { createHash, randomBytes } from 'node:crypto'
import type { RedisClient } from '../../../shared/adapters/redis/connection.js'
import type { Resolution } from '../../../shared/timeseries/resolutions.js'
import { Entitlement } from './entitlement.js'
import type { Reader } from './reader-auth.js'

/*
 * Stream tickets: what a plain EventSource, which cannot send `Authorization`, puts in its
 * URL (`?ticket=`) instead of a long-lived secret. A ticket is a random 192-bit name for a
 * reader, issued by an authenticated POST, valid once and for a few seconds.
 */

/** How long a ticket may wait for its stream. */
export const TICKET_TTL_MS = 30_000

/** A ticket's reader, as stored. */
interface StoredReader {
  sub?: string
  tickers: string[]
  resolutions?: Resolution[]
  exp?: number
}

function store (reader: Reader): string {
  const stored: StoredReader = { tickers: [...reader.entitlement.tickers] }
  if (reader.subject !== undefined) stored.sub = reader.subject
  const resolutions = reader.entitlement.resolutions
  if (resolutions !== undefined) stored.resolutions = resolutions
  if (reader.expiresAt !== undefined) stored.exp = reader.expiresAt
  return JSON.stringify(stored)
}

function load (text: string): Reader {
  const stored = JSON.parse(text) as StoredReader
  return { subject: stored.sub, entitlement: new Entitlement(stored.tickers, stored.resolutions), expiresAt: stored.exp }
}

/** Where tickets live until they are redeemed or expire. */
export interface TicketStore {
  /** Issues a ticket for `reader`, valid once for {@link TICKET_TTL_MS}. */
  issue: (reader: Reader, now: number) => Promise<{ ticket: string, expiresAt: number }>
  /** The reader of a ticket, which is used up by this call; undefined when unknown, used or expired. */
  redeem: (ticket: string, now: number) => Promise<Reader | undefined>
}

function newTicket (): string {
  return randomBytes(24).toString('base64url')
}

/** Embedded mode: one gateway, so the tickets live in its memory. */
export class MemoryTicketStore implements TicketStore {
  readonly #tickets = new Map<string, { reader: Reader, expiresAt: number }>()

  async issue (reader: Reader, now: number): Promise<{ ticket: string, expiresAt: number }> {
    for (const [ticket, entry] of this.#tickets) if (entry.expiresAt <= now) this.#tickets.delete(ticket)
    const ticket = newTicket()
    const expiresAt = now + TICKET_TTL_MS
    this.#tickets.set(ticket, { reader, expiresAt })
    return { ticket, expiresAt }
  }

  async redeem (ticket: string, now: number): Promise<Reader | undefined> {
    const entry = this.#tickets.get(ticket)
    this.#tickets.delete(ticket)
    return entry === undefined || entry.expiresAt <= now ? undefined : entry.reader
  }
}

/**
 * Cluster mode: tickets in Redis, so a ticket issued by one gateway opens a stream on any
 * other. Redis expires them (`PX`) and `GETDEL` redeems atomically: of two gateways that
 * see the same ticket, exactly one gets the reader. Only the ticket's SHA-256 is a key, so
 * reading Redis does not yield usable tickets.
 */
export class RedisTicketStore implements TicketStore {
  constructor (readonly redis: RedisClient, readonly prefix: string) {}

  #key (ticket: string): string {
    return `${this.prefix}${createHash('sha256').update(ticket).digest('base64url')}`
  }

  async issue (reader: Reader, now: number): Promise<{ ticket: string, expiresAt: number }> {
    const ticket = newTicket()
    await this.redis.set(this.#key(ticket), store(reader), 'PX', TICKET_TTL_MS)
    return { ticket, expiresAt: now + TICKET_TTL_MS }
  }

  async redeem (ticket: string): Promise<Reader | undefined> {
    const text = await this.redis.getdel(this.#key(ticket))
    return text === null ? undefined : load(text)
  }
}
