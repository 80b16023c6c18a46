/**
 * The browser executor: one dedicated Web Worker per slot, kept warm between
 * jobs. Modules are compiled once on the page (memory-capped by
 * protocol/runtime) and cached by CID; the compiled Module is posted to the
 * worker, which shares the code. Wall time is enforced from here with
 * Worker.terminate(), the only way to stop a module stuck in a loop.
 */
import { ExecutorError, TimeLimitError, WasmeshError, errorToWire } from '../protocol/errors.ts'
import type { ExecuteRequest, ExecuteResult, Executor } from '../protocol/executor.ts'
import { compileModule } from '../protocol/runtime/compile.ts'
import { memoryPages } from '../protocol/runtime/prepare.ts'
import type { JobMessage, JobReply } from './job-worker.ts'

const MAX_TIMER_MS = 2 ** 31 - 1

export interface WebWorkerExecutorInit {
  slots: number
  /** Compiled modules kept, least recently used dropped first. @default 64 */
  cacheSize?: number
  /** Makes a worker; tests and bundlers may replace it. */
  createWorker?: () => Worker
  /** Remembers which modules were compiled, so a reloaded page compiles them again at start from its local blocks. */
  persist?: ModuleCachePersistence
}

export interface CachedModuleEntry {
  cid: string
  abi: ExecuteRequest['abi']
  memoryBytes: number
}

export interface ModuleCachePersistence {
  load: () => Promise<CachedModuleEntry[]>
  save: (entries: CachedModuleEntry[]) => Promise<void>
  /** The module's bytes from local storage only, or undefined when they are not stored here. */
  bytes: (cid: string, signal: AbortSignal) => Promise<Uint8Array | undefined>
}

function defaultWorker (): Worker {
  return new Worker(new URL('./job-worker.ts', import.meta.url), { type: 'module', name: 'wasmesh-job' })
}

interface Waiter {
  resolve: (worker: PooledWorker) => void
  reject: (reason: unknown) => void
}

export class WebWorkerExecutor implements Executor {
  readonly slots: number
  readonly #cacheSize: number
  readonly #createWorker: () => Worker
  readonly #cache = new Map<string, { cid: string, module: WebAssembly.Module, entry: CachedModuleEntry }>()
  readonly #persist: ModuleCachePersistence | undefined
  #workers: PooledWorker[] = []
  #idle: PooledWorker[] = []
  #queue: Waiter[] = []
  #running = false

  constructor (init: WebWorkerExecutorInit) {
    if (!Number.isInteger(init.slots) || init.slots < 1) {
      throw new RangeError(`slots must be a positive integer, got ${init.slots}`)
    }
    this.slots = init.slots
    this.#cacheSize = init.cacheSize ?? 64
    this.#createWorker = init.createWorker ?? defaultWorker
    this.#persist = init.persist
  }

  async start (): Promise<void> {
    if (this.#running) {
      return
    }
    this.#running = true
    this.#workers = Array.from({ length: this.slots }, () => new PooledWorker(this.#createWorker))
    this.#idle = [...this.#workers]
    try {
      await Promise.all(this.#workers.map(async worker => { await worker.ready }))
    } catch (err) {
      await this.stop()
      throw new ExecutorError(`the Web Workers did not start: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
    await this.#warm()
  }

  /** Compiles the modules a previous page load had cached, from local blocks only. Best effort, bounded in time. */
  async #warm (): Promise<void> {
    if (this.#persist == null) {
      return
    }
    const signal = AbortSignal.timeout(5000)
    try {
      const entries = await this.#persist.load()
      for (const entry of entries.slice(0, this.#cacheSize).reverse()) {
        const bytes = await this.#persist.bytes(entry.cid, signal)
        if (bytes == null) {
          continue
        }
        const module = await compileModule(bytes, entry.abi, { memoryBytes: entry.memoryBytes })
        this.#remember(`${entry.cid}:${entry.abi}:${memoryPages(entry.memoryBytes)}`, entry, module, false)
      }
    } catch {
      // a stale or unreadable cache only costs a compile later
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
    for (const worker of workers) {
      worker.stop(stopped)
    }
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
        if (err instanceof WasmeshError) {
          return toResult(failure(err, 0), performance.now() - compileStarted, moduleCached)
        }
        throw err
      }
    }
    this.#remember(key, { cid: request.module.cid, abi: request.abi, memoryBytes: limits.memoryBytes }, module, !moduleCached)
    const compileMs = moduleCached ? 0 : performance.now() - compileStarted
    const worker = await this.#acquire(signal)
    try {
      const reply = await worker.run({
        module,
        abi: request.abi,
        argv: [request.module.cid, ...request.args],
        env: { ...request.env },
        input: request.input,
        limits: { memoryBytes: limits.memoryBytes, outputBytes: limits.outputBytes }
      }, limits.timeoutMs, signal)
      return toResult(reply, compileMs, moduleCached)
    } finally {
      this.#release(worker)
    }
  }

  cachedModules (): string[] {
    return [...new Set([...this.#cache.values()].reverse().map(entry => entry.cid))]
  }

  #remember (key: string, entry: CachedModuleEntry, module: WebAssembly.Module, save: boolean): void {
    this.#cache.delete(key)
    this.#cache.set(key, { cid: entry.cid, module, entry })
    for (const oldest of this.#cache.keys()) {
      if (this.#cache.size <= this.#cacheSize) {
        break
      }
      this.#cache.delete(oldest)
    }
    if (save && this.#persist != null) {
      this.#persist.save([...this.#cache.values()].reverse().map(cached => cached.entry)).catch(() => {})
    }
  }

  async #acquire (signal: AbortSignal | undefined): Promise<PooledWorker> {
    if (!this.#running) {
      throw new ExecutorError('the executor was stopped')
    }
    const idle = this.#idle.pop()
    if (idle !== undefined) {
      return idle
    }
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

function failure (error: Error, execMs: number): JobReply {
  return { exitCode: -1, output: new Uint8Array(0), stderr: new Uint8Array(0), error: errorToWire(error), execMs }
}

interface ActiveJob {
  reply: (reply: JobReply) => void
  died: (reason: string) => void
  stopped: (reason: Error) => void
}

/** One slot: a Web Worker, replaced whenever it is terminated or crashes. */
class PooledWorker {
  readonly #create: () => Worker
  #worker: Worker
  #job: ActiveJob | undefined
  #stopped = false
  readonly ready: Promise<void>

  constructor (create: () => Worker) {
    this.#create = create
    let resolveReady!: () => void
    let rejectReady!: (err: Error) => void
    this.ready = new Promise((resolve, reject) => { resolveReady = resolve; rejectReady = reject })
    this.#worker = this.#spawn(resolveReady, rejectReady)
  }

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
        reply: reply => { finish(); resolve(reply) },
        died: reason => {
          finish()
          resolve(failure(new ExecutorError(`the job's Web Worker died: ${reason}`), performance.now() - started))
        },
        stopped: reason => { finish(); reject(reason) }
      }
      // cloned, not transferred: the caller still needs the input
      this.#worker.postMessage(job)
    })
  }

  stop (reason: Error): void {
    this.#stopped = true
    this.#job?.stopped(reason)
    this.#worker.terminate()
  }

  #spawn (onReady?: () => void, onFail?: (err: Error) => void): Worker {
    const worker = this.#create()
    worker.onmessage = (event: MessageEvent<JobReply | string>) => {
      if (typeof event.data === 'string') {
        onReady?.()
      } else if (worker === this.#worker) {
        this.#job?.reply(event.data)
      }
    }
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault()
      const message = event.message ?? 'the worker failed'
      onFail?.(new Error(message))
      if (worker === this.#worker && !this.#stopped) {
        this.#job?.died(message)
        this.#replace()
      }
    }
    return worker
  }

  /** Terminates the current worker, whatever it is doing, and starts a fresh one. */
  #replace (): void {
    const old = this.#worker
    this.#worker = this.#spawn()
    old.terminate()
  }
}
