import type { ExecuteRequest, ExecuteResult, Executor } from '../../protocol/runtime/executor.ts'

/** Draws a job's run time, in ms. */
export type RunTime = () => number

/** Adds up the slot time spent running jobs. */
export interface BusyMeter {
  busyMs: number
  executions: number
}

/** What an honest worker outputs for an input: what the simulation checks accepted results against. */
export function expectedOutput (input: Uint8Array): Uint8Array {
  return input.map(byte => byte ^ 0x5a)
}

/**
 * An executor that runs nothing: each job holds its slot for a time drawn
 * from `runTime` (virtual time), then outputs `expectedOutput(input)`. An
 * aborted job ends at once, as a terminated worker thread does.
 */
export function stubExecutor (slots: number, runTime: RunTime, busy: BusyMeter): Executor {
  return {
    slots,
    start: async () => {},
    stop: async () => {},
    cachedModules: () => [],
    execute: async (request: ExecuteRequest): Promise<ExecuteResult> => {
      const ms = Math.max(1, Math.round(runTime()))
      const started = Date.now()
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, ms)
          request.signal?.addEventListener('abort', () => { clearTimeout(timer); reject(request.signal?.reason) }, { once: true })
        })
      } finally {
        busy.busyMs += Date.now() - started
        busy.executions++
      }
      return { exitCode: 0, output: expectedOutput(request.input), stderr: new Uint8Array(0), stats: { compileMs: 0, execMs: ms, moduleCached: true } }
    }
  }
}
