/** Gives abstract-level's iterators the `return()` dynalite calls to stop one early (see the .mjs). */
export function closeIteratorsDynaliteStops (): void
