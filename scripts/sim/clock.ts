import { mock } from 'node:test'

/**
 * Virtual time for the simulation. The protocol's services read the clock
 * through `setTimeout`, `setInterval`, `Date.now()`, `performance.now()` and
 * `AbortSignal.timeout()`; all of them are replaced here by one clock that
 * moves only when the simulation advances it. A thousand peers' ten minutes
 * then take as long as their work costs this process, not ten minutes, and
 * the CPU this one process spends on a thousand peers' crypto and codecs
 * does not show up as network delay.
 *
 * Time advances in steps of `stepMs`: timers due within a step fire in order
 * at its end, then every promise they settled runs before the next step.
 */
export class VirtualClock {
  readonly stepMs: number
  private readonly realPerformanceNow = performance.now.bind(performance)
  private readonly realTimeout = AbortSignal.timeout.bind(AbortSignal)
  private readonly startedAt: number

  constructor (stepMs = 2, startAt = Date.now()) {
    this.stepMs = stepMs
    this.startedAt = startAt
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: startAt })
    performance.now = () => Date.now() - startAt
    AbortSignal.timeout = (ms: number): AbortSignal => {
      const controller = new AbortController()
      setTimeout(() => { controller.abort(new DOMException('The operation timed out', 'TimeoutError')) }, ms)
      return controller.signal
    }
  }

  /** Virtual milliseconds since the clock started. */
  get elapsed (): number {
    return Date.now() - this.startedAt
  }

  /** Advances virtual time by `ms`, letting every settled promise run between steps. */
  async advance (ms: number): Promise<void> {
    const until = this.elapsed + ms
    while (this.elapsed < until) {
      mock.timers.tick(Math.min(this.stepMs, until - this.elapsed))
      await settle()
    }
  }

  /** Advances until `done()` holds, or `limitMs` of virtual time passed; returns whether it holds. */
  async until (done: () => boolean, limitMs: number): Promise<boolean> {
    const until = this.elapsed + limitMs
    while (!done() && this.elapsed < until) {
      mock.timers.tick(this.stepMs)
      await settle()
    }
    return done()
  }

  uninstall (): void {
    mock.timers.reset()
    performance.now = this.realPerformanceNow
    AbortSignal.timeout = this.realTimeout
  }
}

/** Lets promise chains run (all of them, microtasks drain first) and pending I/O callbacks: one turn of the real event loop. */
async function settle (): Promise<void> {
  await new Promise(resolve => setImmediate(resolve))
}
