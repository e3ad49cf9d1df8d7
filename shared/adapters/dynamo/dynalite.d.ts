/** The slice of dynalite 4's API that Pulse uses (the package ships no types). */
declare module 'dynalite' {
  import type { Server } from 'node:http'

  interface DynaliteOptions {
    /** LevelDB directory; in memory when unset. */
    path?: string
    createTableMs?: number
    deleteTableMs?: number
    updateTableMs?: number
    maxItemSizeKb?: number
    verbose?: boolean
    debug?: boolean
  }

  function dynalite (options?: DynaliteOptions): Server
  export default dynalite
}
