import { setMaxListeners } from 'main-event'
import type { JobEvent, RunResult } from './requester.ts'

/**
 * One result of `map`, in completion order; `index` is the input's position.
 * `replaces` is set when an earlier result for the same index was withdrawn
 * (its worker was caught lying) and the job ran again: use this one instead.
 */
export type MapResult =
  | { index: number, ok: true, result: RunResult, replaces?: true }
  | { index: number, ok: false, error: Error, replaces?: true }

/** A job not built yet: building (adding inputs to the store) happens only when the job's turn comes. */
export type PendingJob = () => Promise<RunResult>

/** Where withdrawn results are announced (`job:invalidated`), and how to tell one that was withdrawn before it arrived. */
export interface Healing extends EventTarget {
  withdrawn: (result: RunResult) => boolean
}

/**
 * Runs jobs `concurrency` at a time and yields results in completion order.
 * A failed job yields `{ ok: false, error }` and the rest go on; jobs are
 * pulled from `jobs` only as slots free up, so an endless input stream is
 * fine. While it runs, a result withdrawn through `healing` (its workers
 * were caught lying) is run again: yielded again, marked `replaces`, if it
 * was yielded already; else run again before it is yielded at all.
 */
export async function * runMany (jobs: Iterable<PendingJob> | AsyncIterable<PendingJob>, concurrency: number, signal: AbortSignal, healing?: Healing): AsyncGenerator<MapResult> {
  setMaxListeners(Infinity, signal) // every job in flight listens on it
  const limit = Math.max(1, concurrency)
  const done: MapResult[] = []
  /** Jobs that yielded a result, by job CID: how to run them again. */
  const yielded = new Map<string, { index: number, job: PendingJob }>()
  const reruns: Array<{ index: number, job: PendingJob }> = []
  let wake: (() => void) | undefined
  let running = 0
  let index = 0
  const start = (i: number, job: PendingJob, replaces: boolean): void => {
    running++
    const extra = replaces ? { replaces: true as const } : {}
    job().then(result => {
      if (healing?.withdrawn(result) === true) {
        // its workers were banned while it came back: it never counts
        running--
        reruns.push({ index: i, job })
        wake?.()
        return
      }
      yielded.set(result.job.toString(), { index: i, job })
      settle({ index: i, ok: true, result, ...extra })
    }, (error: Error) => { settle({ index: i, ok: false, error, ...extra }) })
  }
  const settle = (result: MapResult): void => {
    running--
    done.push(result)
    wake?.()
  }
  const onInvalidated = (event: Event): void => {
    const entry = yielded.get((event as CustomEvent<JobEvent>).detail.job)
    if (entry != null) {
      yielded.delete((event as CustomEvent<JobEvent>).detail.job)
      reruns.push(entry)
      wake?.()
    }
  }
  healing?.addEventListener('job:invalidated', onInvalidated)
  try {
    const iterator = (Symbol.asyncIterator in jobs ? jobs[Symbol.asyncIterator]() : jobs[Symbol.iterator]()) as AsyncIterator<PendingJob> | Iterator<PendingJob>
    let exhausted = false
    while (!exhausted || running > 0 || done.length > 0 || reruns.length > 0) {
      while (reruns.length > 0 && running < limit) {
        const rerun = reruns.shift() as { index: number, job: PendingJob }
        start(rerun.index, rerun.job, true)
      }
      while (!exhausted && running < limit) {
        const next = await iterator.next()
        if (next.done === true) {
          exhausted = true
          break
        }
        start(index++, next.value, false)
      }
      const result = done.shift()
      if (result != null) {
        yield result
        continue
      }
      if (running > 0) {
        await new Promise<void>(resolve => { wake = resolve })
        wake = undefined
      }
    }
  } finally {
    healing?.removeEventListener('job:invalidated', onInvalidated)
  }
}
