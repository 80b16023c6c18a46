import { MAX_SLOTS_PER_WORKER, TRUSTED_SLOT_EVERY, UNKNOWN_WORKER_SLOTS } from '../constants.ts'
import type { PeerCapacity } from '../net/capacity.ts'
import type { JobClient } from '../net/job-client.ts'
import type { EncodedJob } from '../wire/job.ts'
import type { Reputation } from './reputation.ts'

/** Whether the worker's advert lists the job's module as compiled there. */
export function hasModule (candidate: PeerCapacity, job: EncodedJob): boolean {
  return candidate.advert.cached.some(cid => cid.equals(job.spec.module))
}

/**
 * Picks workers for jobs from the capacity adverts, with no coordinator:
 * every requester ranks the peers it has heard from by its own record of
 * them, whether the module is cached there, the room they have for our jobs
 * (the credit window their job stream granted us, or before that their
 * advertised slots, bounded by what they have earned, minus what we already
 * sent them), and the round trip we measured. Banned peers are never picked.
 */
export interface SchedulerComponents {
  reputation: Reputation
  /** The credit windows workers granted us. */
  client: Pick<JobClient, 'granted'>
}

export class Scheduler {
  private readonly reputation: Reputation
  private readonly client: Pick<JobClient, 'granted'>
  private readonly inFlight = new Map<string, number>()

  constructor (components: SchedulerComponents) {
    this.reputation = components.reputation
    this.client = components.client
  }

  /** Jobs we have sent this worker that are not answered yet. */
  inFlightTo (peerId: string): number {
    return this.inFlight.get(peerId) ?? 0
  }

  /** `jobs` more of ours went to this worker (a chunk counts its jobs). */
  begin (peerId: string, jobs = 1): void {
    this.inFlight.set(peerId, this.inFlightTo(peerId) + jobs)
  }

  end (peerId: string, jobs = 1): void {
    const left = this.inFlightTo(peerId) - jobs
    if (left > 0) {
      this.inFlight.set(peerId, left)
    } else {
      this.inFlight.delete(peerId)
    }
  }

  /** Workers that could run the job at all, busy or not: with slots (not lending storage alone), capable, not banned, not excluded. */
  eligible (job: EncodedJob, candidates: readonly PeerCapacity[], exclude: ReadonlySet<string>): PeerCapacity[] {
    return candidates.filter(({ advert, peerId }) => advert.slots.total > 0 && !exclude.has(peerId) && !this.reputation.isBanned(peerId) &&
      advert.abis.includes(job.spec.abi) && advert.memoryBytes >= job.spec.limits.memoryBytes)
  }

  /**
   * How many of our jobs a worker may hold at once. An advert is a claim:
   * a stranger gets UNKNOWN_WORKER_SLOTS whatever it advertises, and more
   * only as it delivers (one more per TRUSTED_SLOT_EVERY successes), so a
   * peer advertising a thousand slots cannot draw our jobs away from
   * workers with a record.
   */
  trustedSlots (peerId: string, advertised: number): number {
    const { successes } = this.reputation.get(peerId)
    return Math.min(advertised, UNKNOWN_WORKER_SLOTS + Math.floor(successes / TRUSTED_SLOT_EVERY), MAX_SLOTS_PER_WORKER)
  }

  /**
   * How many more of our jobs a worker has room for now: its credit says
   * what it takes from us (other requesters' share included), a claim
   * bounded by its record, less what it holds of ours already.
   */
  room (candidate: PeerCapacity): number {
    const { advert, peerId } = candidate
    return this.trustedSlots(peerId, this.client.granted(peerId) ?? advert.slots.total) - this.inFlightTo(peerId)
  }

  /**
   * Workers able to take the job now (within the window they granted and
   * their record), best first: record, the module cached there, our jobs
   * already there per slot it runs (a queue there costs a job's wait), and
   * the round trip.
   */
  rank (job: EncodedJob, candidates: readonly PeerCapacity[], exclude: ReadonlySet<string>): PeerCapacity[] {
    const scored: Array<{ candidate: PeerCapacity, score: number }> = []
    for (const candidate of this.eligible(job, candidates, exclude)) {
      const { advert, peerId } = candidate
      if (this.room(candidate) <= 0) {
        continue
      }
      const cached = hasModule(candidate, job)
      const latencyPenalty = Math.min(1, (this.reputation.get(peerId).latencyMs ?? 0) / 100)
      // our jobs per slot it runs at once: beyond 1 they queue there, so an idle worker beats a deep queue elsewhere
      const load = this.inFlightTo(peerId) / Math.max(1, advert.slots.total)
      scored.push({ candidate, score: this.reputation.score(peerId) * 4 + (cached ? 1 : 0) - load - latencyPenalty })
    }
    return scored.sort((a, b) => b.score - a.score).map(s => s.candidate)
  }
}
