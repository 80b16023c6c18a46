/**
 * The Web Worker entry of WebWorkerExecutor: runs one job per message,
 * synchronously, so the executor can stop a runaway job by terminating it.
 */
import { runModule } from '../protocol/runtime/run.ts'
import type { RunOutcome, RunRequest } from '../protocol/runtime/run.ts'

export interface JobMessage extends RunRequest {
  /** Compiled (and memory-capped) on the main thread; posting it shares the compiled code. */
  module: WebAssembly.Module
}

export interface JobReply extends RunOutcome {
  execMs: number
}

export const READY = 'ready'

const scope = self as unknown as { onmessage: ((event: MessageEvent<JobMessage>) => void) | null, postMessage: (message: unknown, transfer?: Transferable[]) => void }

scope.onmessage = event => {
  const job = event.data
  const started = performance.now()
  const outcome = runModule(job.module, job)
  const reply: JobReply = { ...outcome, execMs: performance.now() - started }
  scope.postMessage(reply, [outcome.output.buffer, outcome.stderr.buffer])
}
scope.postMessage(READY)
