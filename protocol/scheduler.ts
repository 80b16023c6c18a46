import type { PeerCapacity } from './capacity.ts'
import type { EncodedJob } from './job.ts'

/** What this requester has seen of a worker. */
export interface WorkerRecord {
  successes: number
  failures: number
  /** Smoothed round trip of recent jobs, minus their execution time. */
  rttMs?: number
  /** Jobs we have sent it that are not answered yet. */
  inFlight: number
}

/**
 * Picks workers for jobs from the capacity adverts, with no coordinator:
 * every requester ranks the peers it has heard from by free slots (minus what
 * it has already sent them), whether the module is cached there, its own
 * record of them, and round-trip time.
 */
export class Scheduler {
  private readonly records = new Map<string, WorkerRecord>()

  record (peerId: string): WorkerRecord {
    let record = this.records.get(peerId)
    if (record == null) {
      record = { successes: 0, failures: 0, inFlight: 0 }
      this.records.set(peerId, record)
    }
    return record
  }

  /** Workers able to take the job now, best first. */
  rank (job: EncodedJob, candidates: readonly PeerCapacity[], exclude: ReadonlySet<string>): PeerCapacity[] {
    const module = job.spec.module.toString()
    const scored: Array<{ candidate: PeerCapacity, score: number }> = []
    for (const candidate of candidates) {
      const { advert, peerId } = candidate
      if (exclude.has(peerId) || !advert.abis.includes(job.spec.abi) || advert.memoryBytes < job.spec.limits.memoryBytes) {
        continue
      }
      const record = this.record(peerId)
      const free = advert.slots.free - record.inFlight
      if (free <= 0) {
        continue
      }
      const cached = advert.cached.some(cid => cid.toString() === module)
      const reliability = (record.successes + 1) / (record.successes + record.failures + 2)
      const rttPenalty = (record.rttMs ?? 0) / 100
      scored.push({ candidate, score: (cached ? 2 : 0) + reliability * 2 + Math.min(free, 8) / 8 - rttPenalty })
    }
    return scored.sort((a, b) => b.score - a.score).map(s => s.candidate)
  }

  succeeded (peerId: string, rttMs: number): void {
    const record = this.record(peerId)
    record.successes++
    record.rttMs = record.rttMs == null ? rttMs : record.rttMs * 0.8 + rttMs * 0.2
  }

  failed (peerId: string): void {
    this.record(peerId).failures++
  }
}
