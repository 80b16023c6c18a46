/**
 * The browser executor: the shared worker pool (protocol/runtime/pool.ts) on
 * dedicated module Web Workers, one per slot.
 */
import { PoolExecutor } from '../protocol/runtime/pool.ts'
import type { ModuleCachePersistence, SpawnWorker } from '../protocol/runtime/pool.ts'
import type { JobReply, READY } from '../protocol/runtime/worker.ts'
import type { WasixRunner } from '../protocol/runtime/wasix.ts'

export type { CachedModuleEntry, ModuleCachePersistence } from '../protocol/runtime/pool.ts'

export interface WebWorkerExecutorInit {
  slots: number
  /** Compiled modules kept, least recently used dropped first. @default 64 */
  cacheSize?: number
  /** Makes a worker; tests and bundlers may replace it. */
  createWorker?: () => Worker
  /** Remembers which modules were compiled, so a reloaded page compiles them again at start from its local blocks. */
  persist?: ModuleCachePersistence
  /** Runs WASIX modules (web/wasix.ts); without it they fail with ForbiddenImportError. */
  wasix?: WasixRunner
}

export class WebWorkerExecutor extends PoolExecutor {
  constructor (init: WebWorkerExecutorInit) {
    super({ slots: init.slots, cacheSize: init.cacheSize, persist: init.persist, spawn: spawnWebWorker(init.createWorker ?? defaultWorker), ...(init.wasix != null ? { wasix: init.wasix } : {}) })
  }
}

function defaultWorker (): Worker {
  // .js: tsc does not rewrite URLs, and the package ships the built file; Vite resolves it to the .ts source in this repo
  return new Worker(new URL('./job-worker.js', import.meta.url), { type: 'module', name: 'wasmesh-job' })
}

function spawnWebWorker (create: () => Worker): SpawnWorker {
  return events => {
    const worker = create()
    worker.onmessage = (event: MessageEvent<JobReply | typeof READY>) => { events.message(event.data) }
    worker.onerror = event => {
      // Handled: the pool fails the job and replaces the worker.
      event.preventDefault()
      // A script that failed to load fires a plain Event, without a message.
      events.died((event as Partial<ErrorEvent>).message ?? 'the worker failed')
    }
    return {
      post: job => { worker.postMessage(job) },
      terminate: async () => { worker.terminate() }
    }
  }
}
