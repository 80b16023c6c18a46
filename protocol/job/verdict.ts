/**
 * Who lied, when workers disagree. The requester asks this once it has an
 * outcome with a quorum and dissenting receipts. The rules (docs/verification.md):
 * - a dissent against three or more agreeing workers is a conviction;
 * - against two (a 2-to-1 vote, which two colluders could win against one
 *   honest worker) the requester runs the job itself when it can, and
 *   convicts whoever its own run contradicts, the majority included;
 *   when it cannot, each dissenter gets a strike (see Reputation.strike);
 * - a worker that reports the time limit where others finished is slow,
 *   not proven a liar: it is marked, not convicted (a time-limit claim that
 *   our own clock contradicts is caught earlier, when its receipt arrives).
 */
import { TimeLimitError } from '../errors.ts'
import type { Execution } from './state.ts'

export interface VerdictInput {
  agreeing: readonly Execution[]
  dissenting: readonly Execution[]
  /** What our own run of the job reported, when we could audit it. */
  audit?: string
}

export interface Verdict {
  /** The outcome to accept: the quorum's, unless our own run sided with a dissent. */
  outcome: string
  accepted: readonly Execution[]
  convict: readonly Execution[]
  strike: readonly Execution[]
  /** Dissenters that only ran out of time. */
  slow: readonly Execution[]
}

export const CONVICTING_QUORUM = 3

export function judge (input: VerdictInput): Verdict {
  const { agreeing, audit } = input
  const outcome = agreeing[0]?.outcome as string
  const slow = input.dissenting.filter(e => e.error?.name === TimeLimitError.NAME)
  const dissenting = input.dissenting.filter(e => !slow.includes(e))
  if (audit != null && audit !== outcome) {
    const vindicated = dissenting.filter(e => e.outcome === audit)
    if (vindicated.length > 0) {
      // our own run agrees with the minority: the majority lied together
      return { outcome: audit, accepted: vindicated, convict: [...agreeing, ...dissenting.filter(e => e.outcome !== audit)], strike: [], slow }
    }
    // our run agrees with nobody: nondeterminism or a broken runtime, not proof against anyone
    return { outcome, accepted: agreeing, convict: [], strike: [], slow }
  }
  if (audit === outcome || agreeing.length >= CONVICTING_QUORUM) {
    return { outcome, accepted: agreeing, convict: dissenting, strike: [], slow }
  }
  return { outcome, accepted: agreeing, convict: [], strike: dissenting, slow }
}
