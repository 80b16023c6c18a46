/**
 * The body of a job worker, shared by the worker_threads and Web Worker
 * entries (which only wire it to their port): runs the job of a message, or
 * the jobs of a list one after the other, synchronously, so the pool can stop
 * a runaway job by terminating the worker. A list is answered with a list.
 */
import { treeBuffers } from './fs-mounts.ts'
import { runModule } from './run.ts'
import type { RunOutcome, RunRequest } from './run.ts'

export interface JobMessage extends RunRequest {
  /** The pool's cache key (cid:abi:memoryPages), under which this worker keeps the module. */
  key: string
  /**
   * Compiled (and memory-capped) by the host; cloning shares the compiled
   * code. Sent only when this worker does not hold `key` yet.
   */
  module?: WebAssembly.Module
  /** Keys to forget, so the worker holds no more modules than the host tracks. */
  drop: string[]
}

export interface JobReply extends RunOutcome {
  execMs: number
}

/** The first message a worker sends, once it can take a job. */
export const READY = 'ready'

/** Output buffers and mount trees are owned by the reply: the port should move them, not copy. */
export type ReplyPort = (reply: JobReply | JobReply[], transfer: ArrayBuffer[]) => void

/** Returns the message handler of a job worker; `reply` posts to the host. */
export function jobHandler (reply: ReplyPort): (job: JobMessage | JobMessage[]) => void {
  const modules = new Map<string, WebAssembly.Module>()
  const run = (job: JobMessage, transfer: ArrayBuffer[]): JobReply => {
    for (const key of job.drop) {
      modules.delete(key)
    }
    if (job.module !== undefined) {
      modules.set(job.key, job.module)
    }
    const module = modules.get(job.key)
    if (module === undefined) {
      // The host's record of this worker is wrong: dying gets it replaced by an empty one.
      throw new Error(`the worker was not sent module ${job.key}`)
    }
    const started = performance.now()
    const outcome = runModule(module, job)
    // The mounts' files were cloned into this worker for this job alone, so they can move back.
    transfer.push(outcome.output.buffer, outcome.stderr.buffer, ...treeBuffers(outcome.mounts ?? []))
    return { ...outcome, execMs: performance.now() - started }
  }
  return message => {
    const transfer: ArrayBuffer[] = []
    const replies = Array.isArray(message) ? message.map(job => run(job, transfer)) : run(message, transfer)
    reply(replies, [...new Set(transfer)])
  }
}
