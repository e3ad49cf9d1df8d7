export type * from './ingest-queue.js'
export type * from './hot-state.js'
export type * from './archive.js'
export type * from './bus.js'
