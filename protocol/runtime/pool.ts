/**
 * The executor behind both platforms: a fixed pool of workers, one post per
 * worker at a time, kept warm or (with `idleMs`) started on demand and ended
 * when idle. Tiny jobs of one module that wait for a worker go
 * to it together, several in one post (see THREAD_BATCH). Modules are
 * compiled once on the host thread and cached; each worker keeps the
 * modules it was sent, so a warm job posts only its input (cloning a Module
 * costs the host thread on every post). Time
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
  message: (data: JobReply | JobReply[] | typeof READY) => void
  /** The worker crashed or exited. Also fine after terminate(): the pool ignores workers it let go. */
  died: (reason: string) => void
}

/** One worker running the job worker entry (see ./worker.ts), as its platform provides it. */
export interface WorkerHost {
  /** Clones the job (or a batch of jobs, as a list) into the worker; nothing is transferred, the caller may still need the input. */
  post: (job: JobMessage | JobMessage[]) => void
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
  /** Modules measured to run faster than this have their queued jobs batched. Default THREAD_BATCH_MAX_EXEC_MS. */
  threadBatchMaxExecMs?: number
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

/**
 * Jobs sent to a worker in one post at most. Only jobs of one module that
 * were waiting for a worker go together, and only when that module is known
 * to run in under THREAD_BATCH_MAX_EXEC_MS: a post and its reply cost more
 * than such a job, and the batch stays far inside every member's time limit.
 */
export const THREAD_BATCH = 16
export const THREAD_BATCH_MAX_EXEC_MS = 5

/** A job waiting for a worker, or running in one. */
interface Task {
  key: string
  module: WebAssembly.Module
  run: RunRequest
  timeoutMs: number
  signal: AbortSignal | undefined
  /** Run in a post of its own: it was in a batch that hit a time limit or killed its worker. */
  alone: boolean
  resolve: (reply: JobReply) => void
  reject: (reason: unknown) => void
  /** Set once resolved or rejected: later news about it is ignored. */
  settled: boolean
  /** When it was queued, and when it was posted to a worker. */
  queuedAt: number
  postedAt?: number
  /** Detaches its abort listener. */
  cleanup: () => void
}

interface CachedModule {
  module: WebAssembly.Module
  entry: CachedModuleEntry
}

export class PoolExecutor implements Executor {
  readonly slots: number
  readonly threadBatch = THREAD_BATCH
  readonly #cacheSize: number
  readonly #spawn: SpawnWorker
  readonly #persist: ModuleCachePersistence | undefined
  readonly #wasix: WasixRunner | undefined
  readonly #batchMaxExecMs: number
  readonly #lifetime: SlotLifetime
  /** Keyed by cid:abi:memoryPages, because the compiled module depends on all three. */
  readonly #cache = new Map<string, CachedModule>()
  #workers: Slot[] = []
  #idle: Slot[] = []
  #queue: Task[] = []
  /** Modules seen to import WASIX, by CID (at most the cache's size): @wasmer/sdk runs them in workers of its own. */
  readonly #wasixModules = new Set<string>()
  /** How long each module's runs take in a worker (smoothed), by cache key: which jobs are tiny enough to batch. */
  readonly #execMs = new Map<string, number>()
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
    this.#batchMaxExecMs = init.threadBatchMaxExecMs ?? THREAD_BATCH_MAX_EXEC_MS
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
    this.#workers = Array.from({ length: this.slots }, () => new Slot(this.#spawn, this.#cacheSize, {
      free: slot => { this.#next(slot) },
      retry: tasks => { this.#retry(tasks) },
      measured: (key, execMs) => { this.#measured(key, execMs) }
    }, this.#lifetime))
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
    for (const task of this.#queue) {
      settle(task, () => { task.reject(stopped) })
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
        this.#wasixModules.delete(request.module.cid)
        this.#wasixModules.add(request.module.cid)
        if (this.#wasixModules.size > this.#cacheSize) {
          this.#wasixModules.delete(this.#wasixModules.values().next().value as string)
        }
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
    const { reply, waitMs } = await this.#run(key, module, run, limits.timeoutMs, signal)
    return toResult(reply, compileMs, moduleCached, waitMs)
  }

  /** Starts a thread on the slot the next job takes, if it has none (started on demand, or ended when idle); not for a WASIX module, which never takes one. */
  expectJob (module: string): void {
    if (this.#running && !this.#wasixModules.has(module)) {
      this.#idle.at(-1)?.warm()
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

  /** Runs the job on an idle worker, or queues it for the next one that frees. */
  async #run (key: string, module: WebAssembly.Module, run: RunRequest, timeoutMs: number, signal: AbortSignal | undefined): Promise<{ reply: JobReply, waitMs: number }> {
    // Checked again here: the pool may have stopped while the module loaded.
    if (!this.#running) {
      throw new ExecutorError('the executor was stopped')
    }
    signal?.throwIfAborted()
    const { promise, resolve, reject } = Promise.withResolvers<JobReply>()
    const task: Task = { key, module, run, timeoutMs, signal, alone: false, resolve, reject, settled: false, cleanup: () => {}, queuedAt: performance.now() }
    if (signal !== undefined) {
      // queued: it leaves the queue; running: the slot stops it (alone) or drops its result (in a batch)
      const onAbort = (): void => {
        this.#queue = this.#queue.filter(entry => entry !== task)
        settle(task, () => { reject(signal.reason) })
      }
      signal.addEventListener('abort', onAbort, { once: true })
      task.cleanup = () => { signal.removeEventListener('abort', onAbort) }
    }
    const idle = this.#idle.pop()
    if (idle !== undefined) {
      idle.start([task])
    } else {
      // The peer enforces its advertised slots (or hands tiny jobs ahead, to batch): queue rather than fail.
      this.#queue.push(task)
    }
    const reply = await promise
    return { reply, waitMs: (task.postedAt ?? task.queuedAt) - task.queuedAt }
  }

  /** A worker is free: it takes the next job, with the tiny jobs of the same module queued behind it. */
  #next (slot: Slot): void {
    // Not ours any more when the pool was stopped meanwhile.
    if (!this.#workers.includes(slot)) {
      return
    }
    const first = this.#queue.shift()
    if (first === undefined) {
      this.#idle.push(slot)
      return
    }
    const batch = [first]
    const size = this.#batchSize(first)
    for (let i = 0; i < this.#queue.length && batch.length < size;) {
      const task = this.#queue[i] as Task
      if (task.key === first.key && this.#batchSize(task) > 1) {
        batch.push(task)
        this.#queue.splice(i, 1)
      } else {
        i++
      }
    }
    slot.start(batch)
  }

  /** How many jobs may share a post with this one: 1 unless its module is known to be tiny. */
  #batchSize (task: Task): number {
    const execMs = this.#execMs.get(task.key)
    if (task.alone || task.run.mounts !== undefined || execMs === undefined || execMs >= this.#batchMaxExecMs) {
      return 1
    }
    // the whole batch stays within a quarter of this job's own time limit
    return Math.max(1, Math.min(THREAD_BATCH, Math.floor(task.timeoutMs / 4 / Math.max(execMs, 0.05))))
  }

  /** Jobs of a batch that hit a time limit or lost its worker: each runs again on its own, first in line, so its own limit decides. */
  #retry (tasks: Task[]): void {
    for (const task of tasks) {
      task.alone = true
    }
    this.#queue.unshift(...tasks)
    // idle workers take their share at once, rather than waiting for the next job to wake them
    while (this.#idle.length > 0 && this.#queue.length > 0) {
      this.#next(this.#idle.pop() as Slot)
    }
  }

  #measured (key: string, execMs: number): void {
    const known = this.#execMs.get(key)
    // quick to follow: a module's first run (cold code) is no guide to the rest
    this.#execMs.set(key, known === undefined ? execMs : (known + execMs) / 2)
    if (this.#execMs.size > this.#cacheSize) {
      this.#execMs.delete(this.#execMs.keys().next().value as string)
    }
  }
}

/** Settles a task once: the first of its reply, its abort or the pool stopping wins. */
function settle (task: Task, how: () => void): void {
  if (!task.settled) {
    task.settled = true
    task.cleanup()
    how()
  }
}

function cacheKey (cid: string, abi: Abi, memoryBytes: number): string {
  return `${cid}:${abi}:${memoryPages(memoryBytes)}`
}

function toResult (reply: JobReply, compileMs: number, moduleCached: boolean, waitMs = 0): ExecuteResult {
  const result: ExecuteResult = {
    exitCode: reply.exitCode,
    output: reply.output,
    stderr: reply.stderr,
    stats: { compileMs, execMs: reply.execMs, moduleCached, waitMs }
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

/** A job that failed before or outside the module's own run, so it has no output. */
function failure (error: Error, execMs: number): JobReply {
  return { exitCode: -1, output: new Uint8Array(0), stderr: new Uint8Array(0), error: errorToWire(error), execMs }
}

/** What a slot tells its pool. */
interface SlotHost {
  /** The slot can take the next post. */
  free: (slot: Slot) => void
  /** Jobs of a batch that must run again, each on its own. */
  retry: (tasks: Task[]) => void
  /** A job of this module ran in a worker for execMs. */
  measured: (key: string, execMs: number) => void
}

/** The post a slot's worker is busy with. */
interface ActivePost {
  reply: (reply: JobReply | JobReply[]) => void
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
  readonly #host: SlotHost
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
  #active: ActivePost | undefined
  #stopped = false
  /** Resolves when the first worker can take a job, rejects when it died first. */
  readonly ready: Promise<void>

  constructor (spawn: SpawnWorker, keep: number, host: SlotHost, lifetime: SlotLifetime) {
    this.#spawnWorker = spawn
    this.#keep = keep
    this.#host = host
    this.#lifetime = lifetime
    if (lifetime.idleMs !== undefined) {
      // Started by the first job: a job then fails with ExecutorError if its worker cannot start.
      this.ready = Promise.resolve()
      return
    }
    this.#worker = this.#spawn()
    this.ready = this.#workerReady
  }

  /**
   * Posts one job, or several of one module, and settles each on its reply,
   * the time limit, its signal or the worker dying. A lone job that runs out
   * of time fails with TimeLimitError. A batch gets the shortest time limit
   * among its jobs: if it runs out, or the worker dies, nobody can tell
   * which job was to blame, so each unsettled job runs again on its own,
   * where its own limit decides.
   */
  start (tasks: Task[]): void {
    clearTimeout(this.#idleTimer)
    if (this.#stopped) {
      for (const task of tasks) {
        settle(task, () => { task.reject(new ExecutorError('the executor was stopped')) })
      }
      return
    }
    const worker = this.#worker ??= this.#spawn()
    if (worker === this.#readyWorker) {
      this.#run(worker, tasks)
      return
    }
    // The time limit counts from when the worker can run the jobs, not from its start.
    const waited = performance.now()
    this.#workerReady.then(() => {
      // a job aborted meanwhile was settled by the pool; a stopped slot settles the rest
      const waiting = tasks.filter(task => !task.settled)
      if (this.#stopped) {
        this.start(waiting)
      } else if (waiting.length > 0) {
        this.#run(worker, waiting)
      } else {
        this.#retireWhenIdle()
        this.#host.free(this)
      }
    }, (err: unknown) => {
      for (const task of tasks) {
        settle(task, () => { task.resolve(failure(new ExecutorError(`the job's worker died: ${err instanceof Error ? err.message : String(err)}`), performance.now() - waited)) })
      }
      this.#retireWhenIdle()
      this.#host.free(this)
    })
  }

  /** Starts a worker ahead of a job, if there is none; one that no job then reaches ends when idle, as any. */
  warm (): void {
    if (this.#stopped || this.#worker !== undefined) {
      return
    }
    this.#worker = this.#spawn()
    this.#retireWhenIdle()
  }

  /** Posts the jobs to a ready worker and settles them (see `start`). */
  #run (worker: WorkerHost, tasks: Task[]): void {
    const first = tasks[0] as Task
    // the post itself (cloning the input) is the hop, not waiting: it counts after postedAt
    const started = performance.now()
    for (const task of tasks) {
      task.postedAt = started
    }
    try {
      this.#post(worker, first.key, first.module, tasks.map(task => task.run))
    } catch (err) {
      for (const task of tasks) {
        settle(task, () => { task.reject(err) })
      }
      this.#host.free(this)
      return
    }
    const unsettled = (): Task[] => tasks.filter(task => !task.settled)
    const finish = (): void => {
      clearTimeout(timer)
      tasks.forEach((task, i) => task.signal?.removeEventListener('abort', onAborts[i] as () => void))
      this.#active = undefined
      this.#retireWhenIdle()
    }
    const timer = setTimeout(() => {
      finish()
      this.#replace()
      if (tasks.length === 1) {
        settle(first, () => { first.resolve(failure(new TimeLimitError(`the job ran longer than its time limit of ${first.timeoutMs} ms and was stopped`), performance.now() - started)) })
      } else {
        this.#host.retry(unsettled())
      }
      this.#host.free(this)
    }, Math.min(Math.min(...tasks.map(task => task.timeoutMs)), MAX_TIMER_MS))
    // the pool's own listener (added first) has rejected the job; once nobody waits for the post, the worker is stopped
    const onAborts = tasks.map(task => {
      const onAbort = (): void => {
        if (unsettled().length === 0) {
          finish()
          this.#replace()
          this.#host.free(this)
        }
      }
      task.signal?.addEventListener('abort', onAbort, { once: true })
      return onAbort
    })
    this.#active = {
      reply: data => {
        finish()
        const replies = Array.isArray(data) ? data : [data]
        if (replies.some(reply => (reply.memoryBytes ?? 0) > BIG_JOB_BYTES)) {
          // the engine keeps a big memory's pages for the thread's lifetime: a fresh thread gives them back
          this.#replace()
        }
        tasks.forEach((task, i) => {
          const reply = replies[i] as JobReply
          this.#host.measured(task.key, reply.execMs)
          settle(task, () => { task.resolve(reply) })
        })
        this.#host.free(this)
      },
      died: reason => {
        finish()
        if (tasks.length === 1) {
          settle(first, () => { first.resolve(failure(new ExecutorError(`the job's worker died: ${reason}`), performance.now() - started)) })
        } else {
          this.#host.retry(unsettled())
        }
        this.#host.free(this)
      },
      stopped: reason => {
        finish()
        for (const task of tasks) {
          settle(task, () => { task.reject(reason) })
        }
      }
    }
  }

  async stop (reason: Error): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#idleTimer)
    this.#active?.stopped(reason)
    await this.#worker?.terminate()
  }

  /**
   * Sends the module only when the worker lacks it, and tells the worker which
   * keys to drop to stay within #keep. The record changes only once the post
   * succeeded, so it always matches what the worker holds.
   */
  #post (worker: WorkerHost, key: string, module: WebAssembly.Module, requests: RunRequest[]): void {
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
    // a batch is a list: the first job carries the module and the drops, the rest only their own input
    const jobs: JobMessage[] = requests.map((request, i) => i === 0 ? { ...request, key, drop, ...(held ? {} : { module }) } : { ...request, key, drop: [] })
    worker.post(jobs.length === 1 ? jobs[0] as JobMessage : jobs)
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
          this.#active?.reply(data)
        }
      },
      died: reason => {
        started.reject(new Error(reason))
        // Workers we terminated on purpose have already been replaced.
        if (worker !== this.#worker || this.#stopped) {
          return
        }
        this.#active?.died(reason)
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
      if (idle === undefined || this.#active !== undefined || this.#stopped) {
        return
      }
      this.#worker = undefined
      // A worker that failed to end, or a failing hook, costs memory only.
      idle.terminate().then(() => { onRetire?.() }).catch(() => {})
    }, Math.min(idleMs, MAX_TIMER_MS))
  }
}
