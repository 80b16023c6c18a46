/**
 * The Node executor: the shared worker pool (protocol/runtime/pool.ts) on
 * worker_threads, each with a capped JS heap, started by the first job and
 * ended when idle; the process collects its garbage once idle (./memory-relief.ts).
 */
import { Worker } from 'node:worker_threads'
import { PoolExecutor } from '../../protocol/runtime/pool.ts'
import { JOB_THREAD_IDLE_MS } from '../../protocol/constants.ts'
import { afterJob, whenSettled } from './memory-relief.ts'
import { nodeWasixRunner } from './wasix.ts'
import type { ExecuteRequest, ExecuteResult } from '../../protocol/runtime/executor.ts'
import type { SpawnWorker } from '../../protocol/runtime/pool.ts'
import type { JobReply, READY } from '../../protocol/runtime/worker.ts'

// Source runs as .ts under type stripping, the published build as .js.
const WORKER_URL = new URL(`./job-worker${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url)

export interface WorkerPoolInit {
  /** Jobs that run at once: one warm worker thread each. */
  slots: number
  /** Compiled modules kept, least recently used dropped first. Default 64. */
  cacheSize?: number
  /**
   * JS heap limit per worker thread in MiB. Wasm memory lives outside the JS
   * heap and is capped by patching the module instead. Default 128.
   */
  heapMb?: number
  /** A thread ends after this long without a job; the next job starts one. @default JOB_THREAD_IDLE_MS */
  idleMs?: number
}

export class WorkerPoolExecutor extends PoolExecutor {
  constructor (init: WorkerPoolInit) {
    super({ slots: init.slots, cacheSize: init.cacheSize, spawn: spawnThread(init.heapMb ?? 128), wasix: nodeWasixRunner(), idleMs: init.idleMs ?? JOB_THREAD_IDLE_MS, onRetire: whenSettled })
  }

  override async start (): Promise<void> {
    await super.start()
    // start-up's garbage, and a young generation grown by it, would otherwise stay for good
    whenSettled()
  }

  override async execute (request: ExecuteRequest): Promise<ExecuteResult> {
    const result = await super.execute(request)
    afterJob(result.output.byteLength, result.memoryBytes ?? 0)
    return result
  }
}

/** Starts job worker threads with a JS heap of `heapMb` MiB. */
export function spawnThread (heapMb: number): SpawnWorker {
  return events => {
    const worker = new Worker(WORKER_URL, { resourceLimits: { maxOldGenerationSizeMb: heapMb } })
    let lastError: Error | undefined
    worker.on('message', (message: JobReply | typeof READY) => { events.message(message) })
    // 'error' comes first and says why; 'exit' says the thread is gone.
    worker.on('error', (err: Error) => { lastError = err })
    worker.on('exit', code => { events.died(lastError?.message ?? `it exited with code ${code}`) })
    return {
      post: job => { worker.postMessage(job) },
      terminate: async () => { await worker.terminate() }
    }
  }
}
