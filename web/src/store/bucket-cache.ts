import { type DBSchema, type IDBPDatabase, openDB } from 'idb'
import type { Bucket, Resolution } from './model.js'

/**
 * Bumped whenever what is stored changes meaning (bucket fields, key format): a cache
 * written by another build is cleared rather than misread.
 */
export const CACHE_SCHEMA = 'pulse-buckets/1'

/** One series as cached. */
export interface CachedSeries {
  key: string
  ticker: string
  resolution: Resolution
  buckets: Bucket[]
  /** When the server last confirmed it, epoch ms. */
  savedAt: number
  /** Last read or write, for least-recently-used eviction. */
  usedAt: number
}

interface PulseDb extends DBSchema {
  series: { key: string, value: CachedSeries, indexes: { usedAt: number } }
  meta: { key: string, value: { key: string, value: string } }
}

export interface BucketCacheOptions {
  name?: string
  /** Series kept before the least recently used are evicted. */
  maxSeries?: number
}

/** Bucket history per `TICKER#resolution` in IndexedDB, versioned, LRU-bounded. */
export class BucketCache {
  private constructor (private readonly db: IDBPDatabase<PulseDb>, private readonly maxSeries: number) {}

  /** Opens (or creates) the cache; `undefined` where IndexedDB is unavailable (private modes). */
  static async open (options: BucketCacheOptions = {}): Promise<BucketCache | undefined> {
    try {
      const db = await openDB<PulseDb>(options.name ?? 'pulse', 1, {
        upgrade (database) {
          const series = database.createObjectStore('series', { keyPath: 'key' })
          series.createIndex('usedAt', 'usedAt')
          database.createObjectStore('meta', { keyPath: 'key' })
        }
      })
      const stamp = await db.get('meta', 'schema')
      if (stamp?.value !== CACHE_SCHEMA) {
        const tx = db.transaction(['series', 'meta'], 'readwrite')
        await tx.objectStore('series').clear()
        await tx.objectStore('meta').put({ key: 'schema', value: CACHE_SCHEMA })
        await tx.done
      }
      return new BucketCache(db, options.maxSeries ?? 64)
    } catch (err) {
      console.warn('Pulse: the local cache is unavailable', err)
      return undefined
    }
  }

  /** Reads one series and marks it used. */
  async read (key: string): Promise<CachedSeries | undefined> {
    const entry = await this.db.get('series', key)
    if (entry !== undefined) {
      // Marking use needs no wait: a lost touch only makes eviction slightly less exact.
      this.db.put('series', { ...entry, usedAt: Date.now() }).catch(() => {})
    }
    return entry
  }

  /** Writes several series in one transaction, then evicts beyond the limit. */
  async write (entries: readonly Omit<CachedSeries, 'usedAt'>[]): Promise<void> {
    if (entries.length === 0) return
    const now = Date.now()
    const tx = this.db.transaction('series', 'readwrite')
    await Promise.all([...entries.map(async (entry) => await tx.store.put({ ...entry, usedAt: now })), tx.done])
    await this.evict()
  }

  private async evict (): Promise<void> {
    const count = await this.db.count('series')
    let excess = count - this.maxSeries
    if (excess <= 0) return
    const tx = this.db.transaction('series', 'readwrite')
    let cursor = await tx.store.index('usedAt').openCursor()
    while (cursor !== null && excess > 0) {
      await cursor.delete()
      excess--
      cursor = await cursor.continue()
    }
    await tx.done
  }

  close (): void {
    this.db.close()
  }
}
