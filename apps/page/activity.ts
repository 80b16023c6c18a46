/**
 * What this tab did, second by second, over the last minutes: jobs it served
 * for others, jobs of its own that came back, and the share of the device's
 * cores busy with other people's jobs. Busy time is integrated from the
 * SDK's work:start / work:end events, so a job shorter than a second counts.
 */
import type { Peer } from '../../web/index.ts'

/** Seconds of history kept and charted. */
export const HISTORY_SECONDS = 300

export interface ActivitySeries {
  /** Unix time of each sample, in seconds. */
  times: number[]
  served: number[]
  consumed: number[]
  /** Percent of this device's cores running other peers' jobs. */
  cpu: number[]
}

export class Activity {
  readonly series: ActivitySeries = { times: [], served: [], consumed: [], cpu: [] }
  readonly #cores = Math.max(1, navigator.hardwareConcurrency || 1)
  #served = 0
  #consumed = 0
  #running = 0
  /** Busy slot-milliseconds since the last sample, and when the running count last changed. */
  #busyMs = 0
  #changedAt = performance.now()
  #sampledAt = performance.now()
  readonly #listeners = new Set<() => void>()

  constructor (peer: Peer) {
    peer.addEventListener('work:start', () => { this.#setRunning(this.#running + 1) })
    peer.addEventListener('work:end', () => {
      this.#served++
      this.#setRunning(Math.max(0, this.#running - 1))
    })
    peer.addEventListener('job:done', () => { this.#consumed++ })
    peer.addEventListener('job:failed', () => { this.#consumed++ })
    setInterval(() => { this.#sample() }, 1000)
  }

  /** Calls `listener` after each sample. */
  onSample (listener: () => void): void {
    this.#listeners.add(listener)
  }

  #setRunning (running: number): void {
    const now = performance.now()
    this.#busyMs += this.#running * (now - this.#changedAt)
    this.#changedAt = now
    this.#running = running
  }

  #sample (): void {
    this.#setRunning(this.#running)
    const now = performance.now()
    const spanMs = Math.max(1, now - this.#sampledAt)
    const { times, served, consumed, cpu } = this.series
    times.push(Date.now() / 1000)
    served.push(this.#served * 1000 / spanMs)
    consumed.push(this.#consumed * 1000 / spanMs)
    cpu.push(Math.min(100, 100 * this.#busyMs / (spanMs * this.#cores)))
    for (const list of [times, served, consumed, cpu]) {
      if (list.length > HISTORY_SECONDS) {
        list.shift()
      }
    }
    this.#served = this.#consumed = this.#busyMs = 0
    this.#sampledAt = now
    for (const listener of this.#listeners) {
      listener()
    }
  }
}
