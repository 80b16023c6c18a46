import type { PeerCapacity } from '../net/capacity.ts'
import type { EncodedJob } from '../wire/job.ts'
import type { Reputation } from './reputation.ts'

/**
 * Picks workers for jobs from the capacity adverts, with no coordinator:
 * every requester ranks the peers it has heard from by free slots (minus
 * what it already sent them), whether the module is cached there, their
 * reputation with this requester, and their round-trip time. Banned peers
 * are never picked.
 */
export interface SchedulerComponents {
  reputation: Reputation
}

export class Scheduler {
  private readonly reputation: Reputation
  private readonly inFlight = new Map<string, number>()

  constructor (components: SchedulerComponents) {
    this.reputation = components.reputation
  }

  /** Jobs we have sent this worker that are not answered yet. */
  inFlightTo (peerId: string): number {
    return this.inFlight.get(peerId) ?? 0
  }

  begin (peerId: string): void {
    this.inFlight.set(peerId, this.inFlightTo(peerId) + 1)
  }

  end (peerId: string): void {
    const left = this.inFlightTo(peerId) - 1
    if (left > 0) {
      this.inFlight.set(peerId, left)
    } else {
      this.inFlight.delete(peerId)
    }
  }

  /** Workers that could run the job at all, busy or not: capable, not banned, not excluded. */
  eligible (job: EncodedJob, candidates: readonly PeerCapacity[], exclude: ReadonlySet<string>): PeerCapacity[] {
    return candidates.filter(({ advert, peerId }) => !exclude.has(peerId) && !this.reputation.isBanned(peerId) &&
      advert.abis.includes(job.spec.abi) && advert.memoryBytes >= job.spec.limits.memoryBytes)
  }

  /** Workers able to take the job now, best first. */
  rank (job: EncodedJob, candidates: readonly PeerCapacity[], exclude: ReadonlySet<string>): PeerCapacity[] {
    const scored: Array<{ candidate: PeerCapacity, score: number }> = []
    for (const candidate of this.eligible(job, candidates, exclude)) {
      const { advert, peerId } = candidate
      // what we sent since its advert may already fill it; other requesters' jobs show up as `busy` answers
      const free = advert.slots.total - this.inFlightTo(peerId)
      if (free <= 0) {
        continue
      }
      const cached = advert.cached.some(cid => cid.equals(job.spec.module))
      const latencyPenalty = (this.reputation.get(peerId).latencyMs ?? 0) / 100
      scored.push({ candidate, score: (cached ? 2 : 0) + this.reputation.score(peerId) * 2 + Math.min(advert.slots.free, free, 8) / 8 - latencyPenalty })
    }
    return scored.sort((a, b) => b.score - a.score).map(s => s.candidate)
  }
}
