/**
 * The Node executor: a fixed pool of warm worker_threads, one job per worker
 * at a time. Modules are compiled once on the main thread and the compiled
 * Module is posted to a worker (structured clone shares the code). Time limits
 * are enforced from here, because only terminating the thread stops a module
 * stuck in a loop.
 */
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import { ExecutorError, TimeLimitError, WasmeshError, errorToWire } from '../../protocol/errors.ts'
import type { ExecuteRequest, ExecuteResult, Executor } from '../../protocol/executor.ts'
import { compileModule } from '../../protocol/runtime/compile.ts'
import { memoryPages } from '../../protocol/runtime/prepare.ts'
import type { JobMessage, JobReply, READY } from './job-worker.ts'

// Source runs as .ts under type stripping, the published build as .js.
const WORKER_URL = new URL(`./job-worker${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url)
/** setTimeout fires at once for delays beyond a signed 32-bit count of milliseconds. */
const MAX_TIMER_MS = 2 ** 31 - 1

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
}

interface Waiter {
  resolve: (worker: PooledWorker) => void
  reject: (reason: unknown) => void
}

export class WorkerPoolExecutor implements Executor {
  readonly slots: number
  readonly #cacheSize: number
  readonly #heapMb: number
  /** Keyed by cid:abi:memoryPages, because the compiled module depends on all three. */
  readonly #cache = new Map<string, { cid: string, module: WebAssembly.Module }>()
  #workers: PooledWorker[] = []
  #idle: PooledWorker[] = []
  #queue: Waiter[] = []
  #running = false

  constructor (init: WorkerPoolInit) {
    if (!Number.isInteger(init.slots) || init.slots < 1) {
      throw new RangeError(`slots must be a positive integer, got ${init.slots}`)
    }
    this.slots = init.slots
    this.#cacheSize = init.cacheSize ?? 64
    this.#heapMb = init.heapMb ?? 128
  }

  async start (): Promise<void> {
    if (this.#running) {
      return
    }
    this.#running = true
    this.#workers = Array.from({ length: this.slots }, () => new PooledWorker(this.#heapMb))
    this.#idle = [...this.#workers]
    try {
      await Promise.all(this.#workers.map(async worker => { await worker.ready }))
    } catch (err) {
      await this.stop()
      throw new ExecutorError(`the worker threads did not start: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
  }

  async stop (): Promise<void> {
    this.#running = false
    const stopped = new ExecutorError('the executor was stopped')
    for (const waiter of this.#queue) {
      waiter.reject(stopped)
    }
    this.#queue = []
    this.#idle = []
    const workers = this.#workers
    this.#workers = []
    await Promise.all(workers.map(async worker => { await worker.stop(stopped) }))
  }

  async execute (request: ExecuteRequest): Promise<ExecuteResult> {
    const { signal, limits } = request
    signal?.throwIfAborted()
    if (!this.#running) {
      throw new ExecutorError('the executor is not running: call start() first')
    }
    const key = `${request.module.cid}:${request.abi}:${memoryPages(limits.memoryBytes)}`
    let module = this.#cache.get(key)?.module
    const moduleCached = module !== undefined
    const compileStarted = performance.now()
    if (module === undefined) {
      const bytes = await request.module.load(signal ?? new AbortController().signal)
      try {
        module = await compileModule(bytes, request.abi, limits)
      } catch (err) {
        // The module's own fault (not wasm, forbidden import, too much memory): a result, not a rejection.
        if (err instanceof WasmeshError) {
          return toResult(failure(err, 0), performance.now() - compileStarted, moduleCached)
        }
        throw err
      }
    }
    this.#remember(key, request.module.cid, module)
    const compileMs = moduleCached ? 0 : performance.now() - compileStarted

    const worker = await this.#acquire(signal)
    try {
      const reply = await worker.run({
        module,
        abi: request.abi,
        argv: [request.module.cid, ...request.args],
        env: request.env,
        input: request.input,
        limits: { memoryBytes: limits.memoryBytes, outputBytes: limits.outputBytes }
      }, limits.timeoutMs, signal)
      return toResult(reply, compileMs, moduleCached)
    } finally {
      this.#release(worker)
    }
  }

  cachedModules (): string[] {
    const cids = [...this.#cache.values()].reverse().map(entry => entry.cid)
    return [...new Set(cids)]
  }

  /** Inserts or refreshes a cache entry; a Map iterates in insertion order, oldest first. */
  #remember (key: string, cid: string, module: WebAssembly.Module): void {
    this.#cache.delete(key)
    this.#cache.set(key, { cid, module })
    for (const oldest of this.#cache.keys()) {
      if (this.#cache.size <= this.#cacheSize) {
        break
      }
      this.#cache.delete(oldest)
    }
  }

  async #acquire (signal: AbortSignal | undefined): Promise<PooledWorker> {
    // Checked again here: the pool may have stopped while the module loaded.
    if (!this.#running) {
      throw new ExecutorError('the executor was stopped')
    }
    const idle = this.#idle.pop()
    if (idle !== undefined) {
      return idle
    }
    // The peer enforces its advertised slots, but queue rather than fail if it does not.
    return await new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.#queue = this.#queue.filter(entry => entry !== waiter)
        reject(signal?.reason)
      }
      const waiter: Waiter = {
        resolve: worker => {
          signal?.removeEventListener('abort', onAbort)
          resolve(worker)
        },
        reject: reason => {
          signal?.removeEventListener('abort', onAbort)
          reject(reason)
        }
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#queue.push(waiter)
    })
  }

  #release (worker: PooledWorker): void {
    // Not ours any more when the pool was stopped meanwhile.
    if (!this.#workers.includes(worker)) {
      return
    }
    const next = this.#queue.shift()
    if (next !== undefined) {
      next.resolve(worker)
    } else {
      this.#idle.push(worker)
    }
  }
}

function toResult (reply: JobReply, compileMs: number, moduleCached: boolean): ExecuteResult {
  const result: ExecuteResult = {
    exitCode: reply.exitCode,
    output: reply.output,
    stderr: reply.stderr,
    stats: { compileMs, execMs: reply.execMs, moduleCached }
  }
  if (reply.error !== undefined) {
    result.error = reply.error
  }
  return result
}

/** A job that failed before or outside the module's own run, so it has no output. */
function failure (error: Error, execMs: number): JobReply {
  return { exitCode: -1, output: new Uint8Array(0), stderr: new Uint8Array(0), error: errorToWire(error), execMs }
}

interface ActiveJob {
  reply: (reply: JobReply) => void
  died: (reason: string) => void
  stopped: (reason: Error) => void
}

/** One slot: a worker thread that is replaced whenever it is killed or dies. */
class PooledWorker {
  readonly #heapMb: number
  /** Undefined after a thread died before it was ready: the next job spawns one. */
  #worker: Worker | undefined
  #job: ActiveJob | undefined
  #lastError: Error | undefined
  #stopped = false
  /** Resolves when the first thread has loaded and can take a job. */
  readonly ready: Promise<unknown>

  constructor (heapMb: number) {
    this.#heapMb = heapMb
    this.#worker = this.#spawn()
    this.ready = once(this.#worker, 'message')
  }

  /** Posts a job and settles on its reply, the time limit, the signal or the thread dying. */
  async run (job: JobMessage, timeoutMs: number, signal: AbortSignal | undefined): Promise<JobReply> {
    signal?.throwIfAborted()
    if (this.#stopped) {
      throw new ExecutorError('the executor was stopped')
    }
    return await new Promise((resolve, reject) => {
      const started = performance.now()
      const finish = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.#job = undefined
      }
      const timer = setTimeout(() => {
        finish()
        this.#replace()
        resolve(failure(new TimeLimitError(`the job ran longer than its time limit of ${timeoutMs} ms and was stopped`), performance.now() - started))
      }, Math.min(timeoutMs, MAX_TIMER_MS))
      const onAbort = (): void => {
        finish()
        this.#replace()
        reject(signal?.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#job = {
        reply: reply => {
          finish()
          resolve(reply)
        },
        died: reason => {
          finish()
          resolve(failure(new ExecutorError(`the job's worker thread died: ${reason}`), performance.now() - started))
        },
        stopped: reason => {
          finish()
          reject(reason)
        }
      }
      this.#worker ??= this.#spawn()
      // The input is cloned, not transferred: the caller may still need it (to hash it, to retry).
      this.#worker.postMessage(job)
    })
  }

  async stop (reason: Error): Promise<void> {
    this.#stopped = true
    this.#job?.stopped(reason)
    await this.#worker?.terminate()
  }

  #spawn (): Worker {
    const worker = new Worker(WORKER_URL, { resourceLimits: { maxOldGenerationSizeMb: this.#heapMb } })
    let ready = false
    worker.on('message', (message: JobReply | typeof READY) => {
      if (typeof message === 'string') {
        ready = true
      } else {
        this.#job?.reply(message)
      }
    })
    worker.on('error', (err: Error) => {
      if (worker === this.#worker) {
        this.#lastError = err
      }
    })
    worker.on('exit', code => {
      // Threads we terminated on purpose have already been replaced.
      if (worker !== this.#worker || this.#stopped) {
        return
      }
      this.#job?.died(this.#lastError?.message ?? `it exited with code ${code}`)
      this.#lastError = undefined
      // A thread that could not even start would fail again at once: respawn lazily then.
      this.#worker = ready ? this.#spawn() : undefined
    })
    return worker
  }

  /** Kills the current thread, whatever it is doing, and starts a fresh one. */
  #replace (): void {
    const old = this.#worker
    this.#worker = this.#spawn()
    // Fire and forget: the new thread is usable while the old one winds down.
    old?.terminate().catch(() => {})
  }
}
