/**
 * The worker_threads entry of WorkerPoolExecutor: runs one job per message,
 * synchronously, so the pool can stop a runaway job by terminating the thread.
 */
import { parentPort } from 'node:worker_threads'
import { runModule } from '../../protocol/runtime/run.ts'
import type { RunOutcome, RunRequest } from '../../protocol/runtime/run.ts'

export interface JobMessage extends RunRequest {
  /** Compiled (and memory-capped) on the main thread; cloning shares the compiled code. */
  module: WebAssembly.Module
}

export interface JobReply extends RunOutcome {
  execMs: number
}

/** The first message a worker sends. */
export const READY = 'ready'

if (parentPort === null) {
  throw new Error('job-worker must be started as a worker thread')
}
const port = parentPort

port.on('message', (job: JobMessage) => {
  const started = performance.now()
  const outcome = runModule(job.module, job)
  const reply: JobReply = { ...outcome, execMs: performance.now() - started }
  // Both are fresh buffers owned by this job: move them instead of copying.
  port.postMessage(reply, [outcome.output.buffer, outcome.stderr.buffer])
})
// 'online' fires before this module's imports have loaded; this says the thread can take a job.
port.postMessage(READY)
