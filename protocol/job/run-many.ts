import { setMaxListeners } from 'main-event'
import type { RunResult } from './requester.ts'

/** One result of `map`, in completion order; `index` is the input's position. */
export type MapResult =
  | { index: number, ok: true, result: RunResult }
  | { index: number, ok: false, error: Error }

/** A job not built yet: building (adding inputs to the store) happens only when the job's turn comes. */
export type PendingJob = () => Promise<RunResult>

/**
 * Runs jobs `concurrency` at a time and yields results in completion order.
 * A failed job yields `{ ok: false, error }` and the rest go on; jobs are
 * pulled from `jobs` only as slots free up, so an endless input stream is fine.
 */
export async function * runMany (jobs: Iterable<PendingJob> | AsyncIterable<PendingJob>, concurrency: number, signal: AbortSignal): AsyncGenerator<MapResult> {
  setMaxListeners(Infinity, signal) // every job in flight listens on it
  const limit = Math.max(1, concurrency)
  const done: MapResult[] = []
  let wake: (() => void) | undefined
  let running = 0
  let index = 0
  const settle = (result: MapResult): void => {
    running--
    done.push(result)
    wake?.()
  }
  const iterator = (Symbol.asyncIterator in jobs ? jobs[Symbol.asyncIterator]() : jobs[Symbol.iterator]()) as AsyncIterator<PendingJob> | Iterator<PendingJob>
  let exhausted = false
  while (!exhausted || running > 0 || done.length > 0) {
    while (!exhausted && running < limit) {
      const next = await iterator.next()
      if (next.done === true) {
        exhausted = true
        break
      }
      const i = index++
      running++
      next.value().then(result => { settle({ index: i, ok: true, result }) }, (error: Error) => { settle({ index: i, ok: false, error }) })
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
}
