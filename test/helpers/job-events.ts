import assert from 'node:assert/strict'
import type { Peer } from '../../protocol/peer.ts'

/** Every job's events on a requester, in order, by job CID. */
export function recordEvents (peer: Peer): Map<string, string[]> {
  const events = new Map<string, string[]>()
  for (const type of ['job:queued', 'job:running', 'job:retry', 'job:done', 'job:failed'] as const) {
    peer.addEventListener(type, event => {
      events.set(event.detail.job, [...(events.get(event.detail.job) ?? []), type.slice(4)])
    })
  }
  return events
}

/** One path through the state machine, in a chunk or alone: queued, any number of sends and retries, then exactly one terminal event. */
export const ONE_PATH = /^queued( (running|retry))* (done|failed)$/

/** Every job recorded (at least `jobs` of them) took one path. */
export function assertOnePath (events: Map<string, string[]>, jobs: number): void {
  assert.ok(events.size >= jobs, `events for ${events.size} of ${jobs} jobs`)
  for (const [job, sequence] of events) {
    assert.match(sequence.join(' '), ONE_PATH, `job ${job}: ${sequence.join(' → ')}`)
  }
}
