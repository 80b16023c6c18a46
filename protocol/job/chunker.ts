import { CHECK_WAIT_MS, CHUNK_JOBS, CHUNK_SHARE_OF_IN_FLIGHT, FIRST_RUN_HEDGE_MS, HEDGE_FACTOR, MAP_CHUNK_DEADLINE_MS, MAP_CHUNK_HOLD_MS, MAP_CHUNK_EXEC_MS, SILENCE_HEDGE_MS, WORKER_WAIT_MS } from '../constants.ts'
import { DeadlineError, TimeLimitError, WorkerBusyError, type WasmeshError } from '../errors.ts'
import { nextTurn } from '../net/frame-writer.ts'
import { receiptSucceeded, verifyReceipt, type Receipt, type VerifiedReceipt } from '../wire/receipt.ts'
import { cancellation, checkTimeClaim, moduleFailure, resultOf } from './job-run.ts'
import { outcomeKey } from './outcome.ts'
import { hasModule } from './scheduler.ts'
import type { Requester, RunResult } from './requester.ts'
import type { RecentAverages } from '../recent-averages.ts'
import type { EncodedJob } from '../wire/job.ts'

/** How one job is run: the caller's signal (the chunker's when not given), and whether results are read from and kept in the result store. */
export interface ChunkedRunOptions {
  signal?: AbortSignal
  resume?: boolean
}

/** A job waiting for a chunk or in one, and how to hand back its result. */
interface Item {
  job: EncodedJob
  queuedAt: number
  signal: AbortSignal
  resume: boolean
  resolve: (result: RunResult) => void
  reject: (err: Error) => void
}

/** For each job of a chunk in order, the verified receipt one worker gave, or undefined where it gave none we can use. */
type Answers = Array<VerifiedReceipt | undefined>

/**
 * Runs jobs, in chunks where that pays: the jobs of one `map` or batch, or
 * the peer's `run` calls (one chunker for all of them). A job whose module
 * its receipts show to run in under MAP_CHUNK_EXEC_MS goes with others of
 * its kind in a chunk: one message, one slot and one answer for up to
 * CHUNK_JOBS jobs, the receipts under one signature, so a tiny job no
 * longer pays for its own messages, state machine and signature check. Each
 * receipt still names its job and verifies alone. A chunk holds an eighth
 * of the jobs in flight here, so chunks queue behind each other at every
 * slot while answers travel; with fewer than 16 in flight (a lone `run`, a
 * narrow map) every job goes alone, as fast as one job can.
 *
 * A chunk keeps what a job gets: `redundancy` distinct workers run it, a
 * single result is checked on a second worker at the rate the worker's
 * record calls for (the whole chunk, so the check covers every job in it),
 * and a job is accepted here only when every worker asked agrees on it. Any
 * other job (a worker disagreed, lost the chunk, refused a job, sent a
 * receipt that does not verify) runs on the job path, starting from the
 * receipts it has, where disagreements are judged and liars convicted as
 * for any job. Everything else (a module not seen yet, or seen to take
 * longer; inputs by CID; mounts) runs on the job path from the start.
 */
export class Chunker {
  readonly #requester: Requester
  /** The map's signal, or none (the peer's `run` calls: each brings its own). */
  readonly #signal: AbortSignal
  readonly #times: RecentAverages
  /** Jobs run here and not yet settled, alone or in chunks: a chunk is an eighth of them. */
  #inFlight = 0
  #waiting: Item[] = []
  /** A pump is due or running: it takes every job waiting when it runs. */
  #pumping = false
  /** A pump held back for a partial chunk to fill. */
  #hold?: ReturnType<typeof setTimeout>
  /** Chunks sent and not yet answered. */
  #chunksOut = 0
  /** A chunk's round trip per job it holds (smoothed), once one came back. */
  #perJobMs?: number

  constructor (requester: Requester, signal: AbortSignal = new AbortController().signal) {
    this.#requester = requester
    this.#times = requester.moduleTimes
    this.#signal = signal
  }

  /** Runs a job, in a chunk or alone, and resolves with its accepted result; with `resume`, a result stored earlier stands. */
  async run (job: EncodedJob, options: ChunkedRunOptions = {}): Promise<RunResult> {
    const signal = options.signal ?? this.#signal
    const resume = options.resume === true
    this.#inFlight++
    try {
      return await (resume ? this.#requester.resumable(job, signal, async () => this.#run(job, signal, resume)) : this.#run(job, signal, resume))
    } finally {
      this.#inFlight--
    }
  }

  /** Jobs per chunk now. */
  #chunkJobs (): number {
    return Math.max(1, Math.min(CHUNK_JOBS, Math.floor(this.#inFlight / CHUNK_SHARE_OF_IN_FLIGHT)))
  }

  async #run (job: EncodedJob, signal: AbortSignal, resume: boolean): Promise<RunResult> {
    // the job path also ends a job whose caller gave up before it started, with its one event
    if (signal.aborted || !this.#chunkable(job) || (this.#chunkJobs() === 1 && this.#waiting.length === 0)) {
      return this.#alone(job, signal, resume)
    }
    const { promise, resolve, reject } = Promise.withResolvers<RunResult>()
    this.#requester.emit('job:queued', { job: job.cid.toString() })
    const item: Item = { job, queuedAt: performance.now(), signal, resume, resolve, reject }
    if (signal !== this.#signal) {
      // a run's own signal: its job leaves the line (or its chunk's answer) at once
      const onAbort = (): void => { this.#cancel(item) }
      signal.addEventListener('abort', onAbort, { once: true })
      const detach = (): void => { signal.removeEventListener('abort', onAbort) }
      promise.then(detach, detach)
    }
    this.#waiting.push(item)
    this.#schedulePump()
    return promise
  }

  /** The job's caller gave up: it leaves the line, and whatever its chunk brings back is dropped. */
  #cancel (item: Item): void {
    const at = this.#waiting.indexOf(item)
    if (at >= 0) {
      this.#waiting.splice(at, 1)
    }
    const error = cancellation(item.signal, item.job.cid.toString())
    this.#requester.emit('job:failed', { job: item.job.cid.toString(), error })
    item.reject(error)
  }

  /**
   * Pumps at the end of this turn, so the jobs the map starts in one turn
   * share a chunk. While other chunks keep the workers busy, a partial chunk
   * waits up to MAP_CHUNK_HOLD_MS to fill: the map refills as results come
   * in, a few jobs per turn, and a chunk of few jobs costs nearly what a
   * full one does.
   */
  #schedulePump (): void {
    const full = this.#waiting.length >= this.#chunkJobs()
    if (this.#hold != null && full) {
      clearTimeout(this.#hold)
      this.#hold = undefined
      this.#pumping = false
    }
    if (this.#pumping) {
      return
    }
    this.#pumping = true
    if (full || this.#chunksOut === 0) {
      nextTurn(() => { void this.#pump() })
    } else {
      this.#hold = setTimeout(() => {
        this.#hold = undefined
        void this.#pump()
      }, MAP_CHUNK_HOLD_MS)
    }
  }

  #chunkable (job: EncodedJob): boolean {
    const { spec } = job
    return spec.input instanceof Uint8Array && (spec.mounts ?? []).length === 0 &&
      (this.#times.get(spec.module.toString()) ?? Infinity) < MAP_CHUNK_EXEC_MS
  }

  /** Runs a job on the job path; `prior`, for a job that was in a chunk: the receipts it has from there. */
  async #alone (job: EncodedJob, signal: AbortSignal, resume: boolean, prior?: VerifiedReceipt[]): Promise<RunResult> {
    try {
      // not `execute`: with `resume` this job's run is already shared (see run)
      const result = await this.#requester.executeOnce(job, { signal, resume, ...(prior != null ? { prior } : {}) })
      this.#learn(job, result.receipt)
      return result
    } catch (err) {
      this.#learn(job, (err as WasmeshError).receipt)
      throw err
    }
  }

  #learn (job: EncodedJob, receipt: Receipt | undefined): void {
    if (receipt == null) {
      return
    }
    this.#times.add(job.spec.module.toString(), receipt.stats.execMs)
  }

  /**
   * Places the waiting jobs in chunks while workers have room, else waits
   * for room; after WORKER_WAIT_MS with no room and no chunk of ours out,
   * sends them alone.
   */
  async #pump (): Promise<void> {
    let waitingSince: number | undefined
    try {
      while (this.#waiting.length > 0) {
        if (this.#signal.aborted) {
          for (const item of this.#waiting.splice(0)) {
            item.reject(this.#signal.reason)
          }
          return
        }
        const first = (this.#waiting[0] as Item).job
        const size = Math.min(this.#chunkJobs(), this.#waiting.length)
        if (size === 1 && this.#chunksOut === 0) {
          // too few jobs in flight for chunks to pay: alone, each as fast as one job can be
          for (const item of this.#waiting.splice(0)) {
            this.#settle(item, this.#alone(item.job, item.signal, item.resume, []))
          }
          return
        }
        // with chunks out, a worker with room for a sliver waits for more: a chunk's messages cost nearly the same whatever it holds
        const placed = this.#requester.reserveChunk(first, new Set(), size, this.#chunksOut > 0 ? Math.ceil(size / 2) : 1)
        if (placed == null) {
          // workers full with our own chunks is backpressure: only a wait with none out counts towards giving up on chunks
          waitingSince = this.#chunksOut > 0 ? undefined : waitingSince ?? Date.now()
          if (waitingSince != null && Date.now() - waitingSince >= (this.#requester.init.workerWaitMs ?? WORKER_WAIT_MS)) {
            // nobody took a chunk for that long: alone, the jobs wait, retry and fail with the reasons the job path gives
            for (const item of this.#waiting.splice(0)) {
              this.#settle(item, this.#alone(item.job, item.signal, item.resume, []))
            }
            return
          }
          await this.#requester.waitForChange(1000, this.#signal, { own: new Set(), anyJob: true })
          continue
        }
        waitingSince = undefined
        this.#requester.placed()
        this.#chunksOut++
        void this.#runChunk(this.#waiting.splice(0, placed.jobs), placed.worker).finally(() => { this.#chunksOut-- })
        if (this.#waiting.length > 0 && this.#waiting.length < this.#chunkJobs()) {
          // a partial chunk left over: it may fill while the ones just sent run
          this.#pumping = false
          this.#schedulePump()
          return
        }
      }
    } finally {
      if (this.#hold == null) {
        this.#pumping = false
      }
    }
  }

  #settle (item: Item, result: Promise<RunResult>): void {
    result.then(item.resolve, item.reject)
  }

  /** Runs a chunk on `worker` (reserved), its other replicas and its check, then accepts what they agree on and sends the rest alone. */
  async #runChunk (items: Item[], worker: string): Promise<void> {
    const jobs = items.map(item => item.job)
    const first = jobs[0] as EncodedJob
    const { redundancy } = first.spec
    const asked = new Set([worker])
    const answers = [this.#ask(worker, jobs)]
    for (let replica = 1; replica < redundancy; replica++) {
      const other = await this.#placeAll(jobs, asked, this.#requester.init.workerWaitMs ?? WORKER_WAIT_MS)
      if (other == null) {
        break // the jobs go alone with the receipts they have: the job path finds their other replicas or says why not
      }
      asked.add(other)
      answers.push(this.#ask(other, jobs))
    }
    const replies = await Promise.all(answers)
    if (replies.length === 1 && replies[0] === 'busy') {
      // its window shrank while the chunk was on its way: the jobs wait for room again, first in line
      this.#waiting.unshift(...items.filter(item => !item.signal.aborted))
      this.#schedulePump()
      return
    }
    const answered = replies.map(reply => this.#usable(reply, jobs))
    // a single result is checked as the job path checks one, at the worker's rate: here the whole chunk at once
    if (redundancy === 1 && answered[0]?.some(answer => answer != null) === true && this.#requester.init.spotCheck !== false && this.#requester.components.reputation.needsCheck(worker)) {
      const checker = await this.#placeAll(jobs, asked, CHECK_WAIT_MS)
      if (checker != null) {
        asked.add(checker)
        answered.push(this.#usable(await this.#ask(checker, jobs), jobs))
      }
    }
    let agreedOnAll = true
    items.forEach((item, i) => {
      if (item.signal.aborted) {
        item.reject(item.signal.reason) // a run's own signal rejected it already; a map's jobs end with the map's reason
        return
      }
      const receipts = answered.map(answers => answers[i]).filter(verified => verified != null)
      const outcome = receipts[0] != null ? outcomeKey(receipts[0].receipt) : undefined
      if (receipts.length === answered.length && receipts.length >= redundancy && receipts.every(r => outcomeKey(r.receipt) === outcome)) {
        this.#settle(item, this.#accept(item, receipts))
      } else {
        agreedOnAll = false
        this.#requester.emit('job:retry', { job: item.job.cid.toString() })
        this.#settle(item, this.#alone(item.job, item.signal, item.resume, receipts))
      }
    })
    if (answered.length > 1 && agreedOnAll) {
      for (const peer of asked) {
        this.#requester.components.reputation.confirm(peer)
      }
    }
  }

  /**
   * How long a chunk may take before its jobs go alone instead: HEDGE_FACTOR
   * times the usual round trip of a chunk that size, at least
   * SILENCE_HEDGE_MS; MAP_CHUNK_DEADLINE_MS before one came back. So a
   * worker that slows down (a throttled tab, a loaded machine) holds a
   * chunk's jobs about as long as it would hold a lone job before its hedge.
   */
  #deadlineFor (jobs: number): number {
    return this.#perJobMs == null ? MAP_CHUNK_DEADLINE_MS : Math.min(MAP_CHUNK_DEADLINE_MS, Math.max(SILENCE_HEDGE_MS, HEDGE_FACTOR * this.#perJobMs * jobs))
  }

  /** A busy answer gave no receipts. */
  #usable (reply: Answers | 'busy', jobs: EncodedJob[]): Answers {
    return reply === 'busy' ? jobs.map(() => undefined) : reply
  }

  /** A worker with room for the whole chunk, waiting up to `waitMs` for one; reserved. */
  async #placeAll (jobs: EncodedJob[], exclude: ReadonlySet<string>, waitMs: number): Promise<string | undefined> {
    const since = Date.now()
    while (!this.#signal.aborted) {
      const placed = this.#requester.reserveChunk(jobs[0] as EncodedJob, exclude, jobs.length, jobs.length)
      if (placed != null) {
        this.#requester.placed()
        return placed.worker
      }
      const left = waitMs - (Date.now() - since)
      if (left <= 0) {
        return undefined
      }
      await this.#requester.waitForChange(Math.min(1000, left), this.#signal, { own: new Set(), anyJob: true })
    }
    return undefined
  }

  /**
   * Sends the chunk to a reserved worker and verifies each receipt against
   * its job and the worker. A job the worker refused, or whose receipt does
   * not verify, points to a slow or large path (a claimed time limit, an
   * output by CID) or a liar: it has no answer here, and goes alone.
   */
  async #ask (worker: string, jobs: EncodedJob[]): Promise<Answers | 'busy'> {
    const { client, reputation, capacity } = this.#requester.components
    const controller = new AbortController()
    const first = jobs[0] as EncodedJob
    // a worker that has not got the module yet fetches and compiles it first: a deadline cut short would abort that every time
    const known = capacity.get(worker)
    const cold = known == null || !hasModule(known, first)
    const deadlineMs = Math.max(this.#deadlineFor(jobs.length), cold ? FIRST_RUN_HEDGE_MS : 0)
    const deadline = setTimeout(() => {
      controller.abort(new DeadlineError(`${worker} did not answer a chunk of ${jobs.length} jobs within ${Math.round(deadlineMs)} ms`))
    }, deadlineMs)
    const onAbort = (): void => { controller.abort(this.#signal.reason) }
    this.#signal.addEventListener('abort', onAbort, { once: true })
    for (const job of jobs) {
      this.#requester.emit('job:running', { job: job.cid.toString(), worker })
    }
    const sentAt = performance.now()
    try {
      const answers = await client.submitChunk(worker, jobs, { signal: controller.signal })
      const roundTripMs = performance.now() - sentAt
      this.#perJobMs = this.#perJobMs == null ? roundTripMs / jobs.length : this.#perJobMs * 0.8 + roundTripMs / jobs.length * 0.2
      let invalid = 0
      const verified = await Promise.all(answers.map(async (answer, i): Promise<VerifiedReceipt | undefined> => {
        if ('error' in answer) {
          return undefined
        }
        try {
          const job = jobs[i] as EncodedJob
          const checked = await verifyReceipt(answer.signed, { job: job.cid, worker })
          // a claimed time limit: a lie when the whole chunk came back sooner; else the job gets its limit alone
          checkTimeClaim(job, checked, roundTripMs, reputation)
          const { receipt } = checked
          // the job path fetches outputs by CID
          return receipt.output instanceof Uint8Array && receipt.error?.name !== TimeLimitError.NAME ? checked : undefined
        } catch {
          invalid++
          return undefined
        }
      }))
      if (invalid > 0) {
        reputation.failed(worker, 'failure')
      } else {
        reputation.succeeded(worker, roundTripMs / jobs.length, jobs.length)
      }
      return verified
    } catch (err) {
      if (this.#signal.aborted) {
        return jobs.map(() => undefined)
      }
      // full, gone, silent or refusing: left be for a while; only a worker that was not merely full is held to account
      this.#requester.backOff(worker)
      if (err instanceof WorkerBusyError) {
        return 'busy'
      }
      reputation.failed(worker, controller.signal.aborted ? 'timeout' : 'failure')
      return jobs.map(() => undefined)
    } finally {
      clearTimeout(deadline)
      this.#signal.removeEventListener('abort', onAbort)
      this.#requester.release(worker, jobs.length)
    }
  }

  /** Every worker asked agreed on the job: its result (or the module's own failure) stands, and with `resume` is stored. */
  async #accept (item: Item, receipts: VerifiedReceipt[]): Promise<RunResult> {
    const [first] = receipts as [VerifiedReceipt]
    const { receipt } = first
    const id = item.job.cid.toString()
    const durationMs = performance.now() - item.queuedAt
    this.#learn(item.job, receipt)
    this.#requester.acceptedOnWordOf(receipts.map(r => r.receipt.worker), id)
    const output = receipt.output as Uint8Array
    if (!receiptSucceeded(receipt)) {
      const error = moduleFailure(first, output, [])
      if (item.resume) {
        await this.#requester.keepFailure(item.job, error)
      }
      this.#requester.emit('job:failed', { job: id, worker: receipt.worker, error, durationMs })
      throw error
    }
    if (item.resume) {
      await this.#requester.keepResult(item.job, { receipts, output }, item.signal)
    }
    this.#requester.emit('job:done', { job: id, worker: receipt.worker, durationMs })
    return resultOf(item.job, receipts, output, [], durationMs, false)
  }
}
