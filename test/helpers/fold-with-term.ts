import type { FoldOptions, FoldOutcome, HotState, TermGrant } from '../../shared/ports/hot-state.js'

/** Terms for tests that fold into a hot state without the aggregator: a counter of this process, as the archive's. */
let nextTerm = 2 ** 20

/**
 * Folds as the aggregator does when a hot state asks for a term (services/aggregator/fold-batch.ts),
 * with terms from a counter of this test process instead of the archive: what is left is
 * the fold's answer, applied or needs-load.
 */
export async function foldWithTerm (hot: HotState, ticker: string, items: Parameters<HotState['fold']>[1], options: FoldOptions): Promise<Exclude<FoldOutcome, { kind: 'needs-term' }>> {
  let term: TermGrant | undefined = options.term
  for (let round = 0; round < 4; round++) {
    const outcome = await hot.fold(ticker, items, term === undefined ? options : { ...options, term })
    if (outcome.kind !== 'needs-term') return outcome
    term = { run: outcome.run, term: nextTerm++ }
  }
  throw new Error(`the hot state refused every term offered for ${ticker}`)
}
