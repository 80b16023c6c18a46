import type { ExecuteRequest, ExecuteResult, Executor } from '../../protocol/runtime/executor.ts'

/** Draws the run time of an execution of the job with this input, in ms. */
export type RunTime = (input: Uint8Array) => number

/**
 * Adds up the slot time spent running jobs: every execution (`busyMs`),
 * those that ran to the end and delivered a receipt (`completedMs`: the
 * accepted results and the checks the requester asked for; not the extra
 * executions it cancelled when the job ended), and of those the first per
 * input (`firstMs`: the map's own work, without its checks).
 */
export interface BusyMeter {
  busyMs: number
  completedMs: number
  firstMs: number
  executions: number
  /** Executions that ran to the end. */
  completed: number
  /** Executions running now. */
  running: number
  /** Inputs that have run to the end at least once. */
  done: Set<string>
  /** Every execution, when `--trace` asks for them. */
  trace?: ExecutionTrace[]
}

/** One execution as `--trace` records it: its input (as text), when it started and ended (virtual epoch ms), the run time drawn, and whether it ran to the end. */
export interface ExecutionTrace {
  input: string
  startedAt: number
  ms: number
  endedAt?: number
  completed: boolean
}

export function busyMeter (options: { trace?: boolean } = {}): BusyMeter {
  return { busyMs: 0, completedMs: 0, firstMs: 0, executions: 0, completed: 0, running: 0, done: new Set(), ...(options.trace === true ? { trace: [] } : {}) }
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
      const ms = Math.max(1, Math.round(runTime(request.input)))
      const started = Date.now()
      let trace: ExecutionTrace | undefined
      if (busy.trace != null) {
        trace = { input: new TextDecoder().decode(request.input), startedAt: started, ms, completed: false }
        busy.trace.push(trace)
      }
      busy.running++
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, ms)
          request.signal?.addEventListener('abort', () => { clearTimeout(timer); reject(request.signal?.reason) }, { once: true })
        })
      } finally {
        busy.running--
        if (trace != null) {
          trace.endedAt = Date.now()
        }
        busy.busyMs += Date.now() - started
        busy.executions++
      }
      busy.completedMs += ms
      busy.completed++
      if (trace != null) {
        trace.completed = true
      }
      const key = Buffer.from(request.input).toString('latin1')
      if (!busy.done.has(key)) {
        busy.done.add(key)
        busy.firstMs += ms
      }
      return { exitCode: 0, output: expectedOutput(request.input), stderr: new Uint8Array(0), stats: { compileMs: 0, execMs: ms, moduleCached: true } }
    }
  }
}
