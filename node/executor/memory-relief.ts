/**
 * Gives memory back after big jobs. An idle Node process does not collect
 * garbage: a 128 MiB output buffer, or the heap a big job's receipt and
 * blocks needed, would stay in RSS for ever. After a big job, a full
 * collection runs once the output has been fetched and again after it was
 * deleted (OUTPUT_TTL_MS), and the process shrinks back.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { BIG_JOB_BYTES, OUTPUT_TTL_MS } from '../../protocol/constants.ts'

/** When, after a big job, the collections run: once it is likely fetched, and once its output blocks are gone. */
const RELIEF_AFTER_MS = [5_000, OUTPUT_TTL_MS + 15_000]

let collect: (() => void) | undefined
const timers: Array<ReturnType<typeof setTimeout>> = []

/** Schedules the collections if the job was big; later big jobs push them back. */
export function afterJob (outputBytes: number, memoryBytes: number): void {
  if (outputBytes < BIG_JOB_BYTES && memoryBytes < BIG_JOB_BYTES) {
    return
  }
  if (collect == null) {
    // `gc` is only exposed behind a flag: set it now, and take the function from a fresh context
    setFlagsFromString('--expose-gc')
    collect = runInNewContext('gc') as () => void
  }
  for (const timer of timers.splice(0)) {
    clearTimeout(timer)
  }
  for (const delay of RELIEF_AFTER_MS) {
    timers.push(setTimeout(() => { collect?.() }, delay).unref())
  }
}
