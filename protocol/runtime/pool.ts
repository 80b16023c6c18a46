/**
 * The executor behind both platforms: a fixed pool of workers, one job per
 * worker at a time, kept warm or (with `idleMs`) started on demand and ended
 * when idle. Modules are compiled once on the host thread and
 * cached; each worker keeps the modules it was sent, so a warm job posts only
 * its input (cloning a Module costs the host thread on every post). Time
 * limits are enforced from here, because only terminating a worker stops a
 * module stuck in a loop. The platform supplies the workers through
 * SpawnWorker: worker_threads in node/executor, Web Workers in web/.
 */
import { ExecutorError, TimeLimitError, WasmeshError, errorToWire } from '../errors.ts'
import type { Abi, ExecuteRequest, ExecuteResult, Executor } from './executor.ts'
import { compileModule } from './compile.ts'
import { importsWasix, memoryPages } from './prepare.ts'
import type { WasixRunner } from './wasix.ts'
import { BIG_JOB_BYTES } from '../constants.ts'
import type { RunRequest } from './run.ts'
import { READY } from './worker.ts'
import type { JobMessage, JobReply } from './worker.ts'

/** argv[0] when the request names no program. */
export const DEFAULT_PROGRAM_NAME = 'main.wasm'

/** setTimeout fires at once for delays beyond a signed 32-bit count of milliseconds. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** What a worker tells its pool. */
export interface WorkerEvents {
  message: (data: JobReply | typeof READY) => void
  /** The worker crashed or exited. Also fine after terminate(): the pool ignores workers it let go. */
  died: (reason: string) => void
}

/** One worker running the job worker entry (see ./worker.ts), as its platform provides it. */
export interface WorkerHost {
  /** Clones the job into the worker; nothing is transferred, the caller may still need the input. */
  post: (job: JobMessage) => void
  terminate: () => Promise<void>
}

export type SpawnWorker = (events: WorkerEvents) => WorkerHost

export interface CachedModuleEntry {
  cid: string
  abi: Abi
  memoryBytes: number
}

/** Remembers which modules were compiled, so a restarted pool compiles them again at start. */
export interface ModuleCachePersistence {
  load: () => Promise<CachedModuleEntry[]>
  save: (entries: CachedModuleEntry[]) => Promise<void>
  /** The module's bytes from local storage only, or undefined when they are not stored here. */
  bytes: (cid: string, signal: AbortSignal) => Promise<Uint8Array | undefined>
}

export interface PoolInit {
  /** Jobs that run at once: one warm worker each. */
  slots: number
  /**
   * Compiled modules kept, least recently used dropped first; also the most
   * each worker keeps. Default 64.
   */
  cacheSize?: number
  spawn: SpawnWorker
  persist?: ModuleCachePersistence
  /** Runs modules that import WASIX (through @wasmer/sdk); without it they fail with ForbiddenImportError. */
  wasix?: WasixRunner
  /**
   * Set: each slot starts its worker on its first job and ends it after this
   * many ms without one; the compiled modules stay cached here, so only the
   * worker's start is paid again. Unset: every worker starts with the pool
   * and stays.
   */
  idleMs?: number
  /** Called after an idle worker was ended, e.g. to collect the garbage it leaves behind. */
  onRetire?: () => void
}

/** When a slot's worker starts and ends: the pool's `idleMs` and `onRetire`. */
type SlotLifetime = Pick<PoolInit, 'idleMs' | 'onRetire'>

interface Waiter {
  resolve: (slot: Slot) => void
  reject: (reason: unknown) => void
}

interface CachedModule {
  module: WebAssembly.Module
  entry: CachedModuleEntry
}

export class PoolExecutor implements Executor {
  readonly slots: number
  readonly #cacheSize: number
  readonly #spawn: SpawnWorker
  readonly #persist: ModuleCachePersistence | undefined
  readonly #wasix: WasixRunner | undefined
  readonly #lifetime: SlotLifetime
  /** Keyed by cid:abi:memoryPages, because the compiled module depends on all three. */
  readonly #cache = new Map<string, CachedModule>()
  #workers: Slot[] = []
  #idle: Slot[] = []
  #queue: Waiter[] = []
  #running = false

  constructor (init: PoolInit) {
    if (!Number.isInteger(init.slots) || init.slots < 1) {
      throw new RangeError(`slots must be a positive integer, got ${init.slots}`)
    }
    this.slots = init.slots
    this.#cacheSize = init.cacheSize ?? 64
    this.#spawn = init.spawn
    this.#persist = init.persist
    this.#wasix = init.wasix
    if (init.idleMs !== undefined && !(init.idleMs > 0)) {
      throw new RangeError(`idleMs must be positive, got ${init.idleMs}`)
    }
    this.#lifetime = { idleMs: init.idleMs, onRetire: init.onRetire }
  }

  async start (): Promise<void> {
    if (this.#running) {
      return
    }
    this.#running = true
    this.#workers = Array.from({ length: this.slots }, () => new Slot(this.#spawn, this.#cacheSize, this.#lifetime))
    this.#idle = [...this.#workers]
    try {
      await Promise.all(this.#workers.map(async slot => { await slot.ready }))
    } catch (err) {
      await this.stop()
      throw new ExecutorError(`the workers did not start: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
    await this.#warm()
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
    await Promise.all([...workers.map(async slot => { await slot.stop(stopped) }), this.#wasix?.stop()])
  }

  async execute (request: ExecuteRequest): Promise<ExecuteResult> {
    const { signal, limits } = request
    signal?.throwIfAborted()
    if (!this.#running) {
      throw new ExecutorError('the executor is not running: call start() first')
    }
    const key = cacheKey(request.module.cid, request.abi, limits.memoryBytes)
    let module = this.#cache.get(key)?.module
    const moduleCached = module !== undefined
    const compileStarted = performance.now()
    if (module === undefined) {
      const bytes = await request.module.load(signal ?? new AbortController().signal)
      if (this.#wasix !== undefined && request.abi === 'wasi' && importsWasix(bytes)) {
        // Not compiled here: the SDK compiles and runs it in workers of its own.
        return this.#wasix.run({ cid: request.module.cid, bytes, args: request.args, env: request.env, input: request.input, limits, mounts: request.mounts?.length ?? 0, ...(signal !== undefined ? { signal } : {}) })
      }
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
    this.#remember(key, { cid: request.module.cid, abi: request.abi, memoryBytes: limits.memoryBytes }, module, !moduleCached)
    const compileMs = moduleCached ? 0 : performance.now() - compileStarted

    const slot = await this.#acquire(signal)
    try {
      const run: RunRequest = {
        abi: request.abi,
        argv: [request.programName ?? DEFAULT_PROGRAM_NAME, ...request.args],
        env: { ...request.env },
        input: request.input,
        limits: { memoryBytes: limits.memoryBytes, outputBytes: limits.outputBytes }
      }
      // Only jobs with files carry them: the rest post (and clone) exactly what they did before.
      if (request.mounts !== undefined && request.mounts.length > 0) {
        run.mounts = request.mounts
      }
      if (request.filesystemBytes !== undefined) {
        run.limits.filesystemBytes = request.filesystemBytes
      }
      const reply = await slot.run(key, module, run, limits.timeoutMs, signal)
      return toResult(reply, compileMs, moduleCached)
    } finally {
      this.#release(slot)
    }
  }

  cachedModules (): string[] {
    return [...new Set([...this.#cache.values()].reverse().map(cached => cached.entry.cid))]
  }

  /** Compiles the modules a previous run had cached, from local bytes only. Best effort, bounded in time. */
  async #warm (): Promise<void> {
    if (this.#persist === undefined) {
      return
    }
    const signal = AbortSignal.timeout(5000)
    try {
      const entries = await this.#persist.load()
      for (const entry of entries.slice(0, this.#cacheSize).reverse()) {
        const bytes = await this.#persist.bytes(entry.cid, signal)
        if (bytes === undefined) {
          continue
        }
        const module = await compileModule(bytes, entry.abi, { memoryBytes: entry.memoryBytes })
        this.#remember(cacheKey(entry.cid, entry.abi, entry.memoryBytes), entry, module, false)
      }
    } catch {
      // A stale or unreadable list only costs a compile later.
    }
  }

  /** Inserts or refreshes a cache entry; a Map iterates in insertion order, oldest first. */
  #remember (key: string, entry: CachedModuleEntry, module: WebAssembly.Module, save: boolean): void {
    this.#cache.delete(key)
    this.#cache.set(key, { module, entry })
    for (const oldest of this.#cache.keys()) {
      if (this.#cache.size <= this.#cacheSize) {
        break
      }
      this.#cache.delete(oldest)
    }
    if (save && this.#persist !== undefined) {
      this.#persist.save([...this.#cache.values()].reverse().map(cached => cached.entry)).catch(() => {})
    }
  }

  async #acquire (signal: AbortSignal | undefined): Promise<Slot> {
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
        resolve: slot => {
          signal?.removeEventListener('abort', onAbort)
          resolve(slot)
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

  #release (slot: Slot): void {
    // Not ours any more when the pool was stopped meanwhile.
    if (!this.#workers.includes(slot)) {
      return
    }
    const next = this.#queue.shift()
    if (next !== undefined) {
      next.resolve(slot)
    } else {
      this.#idle.push(slot)
    }
  }
}

function cacheKey (cid: string, abi: Abi, memoryBytes: number): string {
  return `${cid}:${abi}:${memoryPages(memoryBytes)}`
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
  if (reply.mounts !== undefined) {
    result.mounts = reply.mounts
  }
  if (reply.memoryBytes !== undefined) {
    result.memoryBytes = reply.memoryBytes
  }
  return result
}

/** Waits for a worker to become ready, or rejects with the signal's reason. */
async function untilReady (ready: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) {
    return ready
  }
  signal.throwIfAborted()
  const aborted = Promise.withResolvers<never>()
  const onAbort = (): void => { aborted.reject(signal.reason) }
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    await Promise.race([ready, aborted.promise])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
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

/**
 * One slot: a worker that is replaced whenever it is killed or dies, and,
 * with `idleMs`, started on demand and ended when idle.
 */
class Slot {
  readonly #spawnWorker: SpawnWorker
  /** The most modules the worker keeps. */
  readonly #keep: number
  readonly #lifetime: SlotLifetime
  /** Undefined until needed (an idle or never-started worker, or one that died before it was ready): the next job spawns one. */
  #worker: WorkerHost | undefined
  /** Resolves when #worker can take a job, rejects when it died first. */
  #workerReady: Promise<void> = Promise.resolve()
  /** The last worker that said it was ready: a job for it need not wait. */
  #readyWorker: WorkerHost | undefined
  #idleTimer: ReturnType<typeof setTimeout> | undefined
  /** Cache keys of the modules the current worker holds, least recently used first. */
  #held = new Set<string>()
  #job: ActiveJob | undefined
  #stopped = false
  /** Resolves when the first worker can take a job, rejects when it died first. */
  readonly ready: Promise<void>

  constructor (spawn: SpawnWorker, keep: number, lifetime: SlotLifetime) {
    this.#spawnWorker = spawn
    this.#keep = keep
    this.#lifetime = lifetime
    if (lifetime.idleMs !== undefined) {
      // Started by the first job: a job then fails with ExecutorError if its worker cannot start.
      this.ready = Promise.resolve()
      return
    }
    this.#worker = this.#spawn()
    this.ready = this.#workerReady
  }

  /** Posts a job and settles on its reply, the time limit, the signal or the worker dying. */
  async run (key: string, module: WebAssembly.Module, request: RunRequest, timeoutMs: number, signal: AbortSignal | undefined): Promise<JobReply> {
    signal?.throwIfAborted()
    if (this.#stopped) {
      throw new ExecutorError('the executor was stopped')
    }
    clearTimeout(this.#idleTimer)
    const worker = this.#worker ??= this.#spawn()
    const waited = performance.now()
    try {
      // The time limit counts from when the worker can run the job, not from its start.
      if (worker !== this.#readyWorker) {
        await untilReady(this.#workerReady, signal)
      }
    } catch (err) {
      this.#retireWhenIdle()
      if (signal?.aborted === true) {
        throw signal.reason
      }
      return failure(new ExecutorError(`the job's worker died: ${err instanceof Error ? err.message : String(err)}`), performance.now() - waited)
    }
    if (this.#stopped) {
      throw new ExecutorError('the executor was stopped')
    }
    this.#post(worker, key, module, request)
    return await new Promise((resolve, reject) => {
      const started = performance.now()
      const finish = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.#job = undefined
        this.#retireWhenIdle()
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
          if ((reply.memoryBytes ?? 0) > BIG_JOB_BYTES) {
            // the engine keeps a big memory's pages for the thread's lifetime: a fresh thread gives them back
            this.#replace()
          }
          resolve(reply)
        },
        died: reason => {
          finish()
          resolve(failure(new ExecutorError(`the job's worker died: ${reason}`), performance.now() - started))
        },
        stopped: reason => {
          finish()
          reject(reason)
        }
      }
    })
  }

  async stop (reason: Error): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#idleTimer)
    this.#job?.stopped(reason)
    await this.#worker?.terminate()
  }

  /**
   * Sends the module only when the worker lacks it, and tells the worker which
   * keys to drop to stay within #keep. The record changes only once the post
   * succeeded, so it always matches what the worker holds.
   */
  #post (worker: WorkerHost, key: string, module: WebAssembly.Module, request: RunRequest): void {
    const held = this.#held.has(key)
    const excess = this.#held.size + (held ? 0 : 1) - this.#keep
    const drop: string[] = []
    for (const oldest of this.#held) {
      if (drop.length >= excess) {
        break
      }
      if (oldest !== key) {
        drop.push(oldest)
      }
    }
    worker.post({ ...request, key, drop, ...(held ? {} : { module }) })
    for (const dropped of drop) {
      this.#held.delete(dropped)
    }
    this.#held.delete(key)
    this.#held.add(key)
  }

  #spawn (): WorkerHost {
    let ready = false
    const started = Promise.withResolvers<void>()
    // Also rejected for workers nobody waits on (replaced, or stopped): not an unhandled rejection.
    started.promise.catch(() => {})
    const worker = this.#spawnWorker({
      message: data => {
        if (data === READY) {
          ready = true
          this.#readyWorker = worker
          started.resolve()
        } else if (worker === this.#worker) {
          this.#job?.reply(data)
        }
      },
      died: reason => {
        started.reject(new Error(reason))
        // Workers we terminated on purpose have already been replaced.
        if (worker !== this.#worker || this.#stopped) {
          return
        }
        this.#job?.died(reason)
        if (ready) {
          this.#replace()
        } else {
          // One that could not even start would fail again at once: respawn lazily then.
          this.#worker = undefined
          worker.terminate().catch(() => {})
        }
      }
    })
    // A new worker starts with no modules.
    this.#held = new Set()
    this.#workerReady = started.promise
    return worker
  }

  /**
   * Kills the current worker, whatever it is doing, and starts a fresh one: a
   * job just ended here, so another is likely (an idle slot ends it later).
   */
  #replace (): void {
    const old = this.#worker
    this.#worker = this.#spawn()
    // Fire and forget: the new worker is usable while the old one winds down.
    old?.terminate().catch(() => {})
  }

  /** With `idleMs`: ends the worker once no job came for that long. */
  #retireWhenIdle (): void {
    const { idleMs, onRetire } = this.#lifetime
    if (idleMs === undefined || this.#stopped) {
      return
    }
    clearTimeout(this.#idleTimer)
    this.#idleTimer = setTimeout(() => {
      const idle = this.#worker
      if (idle === undefined || this.#job !== undefined || this.#stopped) {
        return
      }
      this.#worker = undefined
      // A worker that failed to end, or a failing hook, costs memory only.
      idle.terminate().then(() => { onRetire?.() }).catch(() => {})
    }, Math.min(idleMs, MAX_TIMER_MS))
  }
}
