/**
 * Gives memory back when the process goes quiet. An idle Node process does
 * not collect garbage, and V8 keeps its young generation at the size the
 * busiest moment grew it to (32 MiB and more, after start-up or a run of
 * jobs): a 128 MiB output buffer, start-up's garbage or a burst's young
 * generation would stay in RSS for ever. So a collection that also shrinks
 * the heap (V8's "last resort" one) runs once things have settled: after
 * start-up, after the job threads went idle, and after a big job, once its
 * output has been fetched and again after it was deleted (OUTPUT_TTL_MS).
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { BIG_JOB_BYTES, OUTPUT_TTL_MS } from '../../protocol/constants.ts'

/** When, after a big job, the collections run: once it is likely fetched, and once its output blocks are gone. */
const RELIEF_AFTER_MS = [5_000, OUTPUT_TTL_MS + 15_000]

/** How long after start-up, or the job threads' retirement, the collection waits for the last of the work to settle. */
export const SETTLE_MS = 5_000

let collect: (() => void) | undefined
const timers: Array<ReturnType<typeof setTimeout>> = []

/** Schedules the collections if the job was big; later big jobs push them back. */
export function afterJob (outputBytes: number, memoryBytes: number): void {
  if (outputBytes < BIG_JOB_BYTES && memoryBytes < BIG_JOB_BYTES) {
    return
  }
  schedule(RELIEF_AFTER_MS)
}

/** Schedules one collection SETTLE_MS from now, unless one is already due. */
export function whenSettled (): void {
  if (timers.length === 0) {
    schedule([SETTLE_MS])
  }
}

function schedule (delays: number[]): void {
  for (const timer of timers.splice(0)) {
    clearTimeout(timer)
  }
  for (const delay of delays) {
    const timer: ReturnType<typeof setTimeout> = setTimeout(() => {
      timers.splice(timers.indexOf(timer), 1)
      relieve()
    }, delay).unref()
    timers.push(timer)
  }
}

function relieve (): void {
  // `gc` is only exposed behind a flag: set it once, and take the function from a fresh context
  if (collect == null) {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as NonNullable<typeof globalThis.gc>
    collect = () => { gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }) }
  }
  collect()
}
