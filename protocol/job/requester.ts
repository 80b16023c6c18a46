import { TypedEventEmitter } from 'main-event'
import { ADVERT_SETTLE_MS, BACKUP_FACTOR, BACKUP_MIN_MS, EXPLORATION_RATE, FIRST_RUN_HEDGE_MS, HEALING_MEMORY, HEDGE_FACTOR, SILENCE_HEDGE_MS, BUSY_BACKOFF_MAX_MS, BUSY_BACKOFF_MS } from '../constants.ts'
import { errorToWire } from '../errors.ts'
import { fetchMountTrees } from './mount-trees.ts'
import { createJobState } from './state.ts'
import { hasModule } from './scheduler.ts'
import { JobRun, resultOf } from './job-run.ts'
import { RecentAverages } from '../recent-averages.ts'
import type { ExecuteOptions, JobEvent, JobEventType, RequesterComponents, RequesterEvents, RequesterInit, RunResult } from './job-types.ts'
import type { VerifiedReceipt } from '../wire/receipt.ts'
import type { EncodedJob } from '../wire/job.ts'
import type { PeerCapacity } from '../net/capacity.ts'

/** Modules whose execution time is remembered, the least recently run dropped first. */
const MAX_TIMED_MODULES = 256

export type { ExecuteOptions, JobEvent, JobEventType, RequesterComponents, RequesterEvents, RequesterInit, RunResult } from './job-types.ts'

/**
 * Gets jobs run on the network and accepts only what distinct workers agree
 * on. Each job is a state machine (state.ts): this class carries out its plan
 * (placing executions on distinct workers, checking single results, deciding
 * disagreements, judging dissenters) and feeds what happens back in as events.
 * Job events and persistence come only from the job's transitions.
 */
export class Requester extends TypedEventEmitter<RequesterEvents> {
  readonly components: RequesterComponents
  readonly init: RequesterInit
  private readonly selfId: string
  private readonly wakers = new Set<() => void>()
  /**
   * Running jobs whose single result's check is not drawn yet: room that no
   * waiting job wants is offered to them, oldest first (JobRun.checkEarly).
   * @internal for JobRun
   */
  readonly checkable = new Set<() => boolean>()
  /** Jobs running with `resume`, by CID. */
  private readonly running = new Map<string, Promise<RunResult>>()
  /** The workers each result accepted in this session rests on, oldest first, at most HEALING_MEMORY of them. */
  private readonly restsOn = new Map<string, readonly string[]>()
  /** Workers that answered busy or could not be reached, and until when we leave them be. */
  private readonly busyUntil = new Map<string, { until: number, strikes: number }>()
  /**
   * How long each module's jobs execute (smoothed), from their receipts:
   * which are tiny enough to travel in chunks (chunker.ts). Kept across
   * maps, so a second map of a module chunks from its first job.
   */
  readonly moduleTimes = new RecentAverages(MAX_TIMED_MODULES, 0.2)
  /** How long jobs of each module took to come back, as we measured it (smoothed), for hedging. */
  private readonly roundTrips = new Map<string, number>()
  private firstAdvertAt?: number
  /** When a job of ours last waited for a worker: backups are for a wide map's tail. */
  private lastWaitAt = -Infinity
  /**
   * Waiting jobs a wake may still be handed on to: a woken job that cannot
   * place (its own exclusions: a check cannot go to the worker it checks)
   * wakes the next, until one places or none could.
   */
  private passLeft = 0

  constructor (components: RequesterComponents, init: RequesterInit = {}) {
    super()
    this.components = components
    this.init = init
    this.selfId = components.peerId.toString()
  }

  start (): void {
    this.components.capacity.addEventListener('change', this.onCapacityChange)
    this.components.reputation.addEventListener('banned', this.onBanned)
  }

  stop (): void {
    this.components.capacity.removeEventListener('change', this.onCapacityChange)
    this.components.reputation.removeEventListener('banned', this.onBanned)
  }

  /**
   * Something changed that may let a waiting job go (an advert): wakes the
   * job waiting longest, which hands the wake on if it cannot use it. Not
   * every waiting job at once: with a thousand workers advertising while a
   * wide map waits, a wake-everyone per advert costs more than the jobs.
   */
  wake (): void {
    if (this.firstAdvertAt == null && this.components.capacity.peers().length > 0) {
      this.firstAdvertAt = Date.now()
    }
    this.startPass()
  }

  /**
   * Runs a job and resolves with its accepted result. With `resume`, a job
   * already accepted is read back from the result store, and the same job
   * asked for again while it runs shares that run: one CID, one result.
   */
  async execute (job: EncodedJob, options: ExecuteOptions): Promise<RunResult> {
    return options.resume ? this.resumable(job, options.signal, async () => this.executeOnce(job, options)) : this.executeOnce(job, options)
  }

  /**
   * The job's stored result if it was accepted before, else `run`'s, shared
   * by every caller asking for the same job while it runs.
   * @internal for Chunker
   */
  async resumable (job: EncodedJob, signal: AbortSignal, run: () => Promise<RunResult>): Promise<RunResult> {
    const key = job.cid.toString()
    let running = this.running.get(key)
    if (running == null) {
      running = this.stored(job, signal).then(async stored => stored ?? run()).finally(() => { this.running.delete(key) })
      this.running.set(key, running)
    }
    return running
  }

  /**
   * Runs a job once, storing its result with `resume` but neither reading
   * the store nor sharing the run (`execute` does).
   * @internal for Chunker
   */
  async executeOnce (job: EncodedJob, options: ExecuteOptions): Promise<RunResult> {
    const started = performance.now()
    const redundancy = job.spec.redundancy
    const run = new JobRun(this, job, options, createJobState(job.cid.toString(), { replicas: redundancy, quorum: Math.floor(redundancy / 2) + 1 }))
    if (options.prior == null) {
      this.emit('job:queued', { job: run.id }) // a job going on from prior receipts was queued where they were gathered
    }
    return run.run(started)
  }

  /** A result accepted before and stored (not resting only on workers banned since) stands in for a run. */
  private async stored (job: EncodedJob, signal: AbortSignal): Promise<RunResult | undefined> {
    const stored = await this.components.results.get(job.cid, signal)
    if (stored == null || this.withdrawn(stored)) {
      return undefined
    }
    const id = job.cid.toString()
    this.emit('job:queued', { job: id })
    this.emit('job:done', { job: id, worker: stored.receipts[0]?.receipt.worker, durationMs: 0 })
    const mounts = await fetchMountTrees(job, (stored.receipts[0] as VerifiedReceipt).receipt, this.components.content, signal)
    return resultOf(job, stored.receipts, stored.output, mounts, 0, true)
  }

  /** Keeps an accepted result in the result store (`resume`). @internal for JobRun and Chunker */
  async keepResult (job: EncodedJob, result: { receipts: VerifiedReceipt[], output: Uint8Array }, signal: AbortSignal): Promise<void> {
    await this.components.results.put(job.cid, result, signal)
  }

  /** Keeps a job's failure in the result store (`resume`), best effort: the failure itself is what the caller reports. @internal for JobRun and Chunker */
  async keepFailure (job: EncodedJob, error: Error): Promise<void> {
    await this.components.results.putFailure(job.cid, errorToWire(error)).catch(() => {})
  }

  /** Whether a result rests only on workers banned since: it must not be used. */
  withdrawn (result: Pick<RunResult, 'receipts'>): boolean {
    return result.receipts.length > 0 && result.receipts.every(r => this.components.reputation.isBanned(r.receipt.worker))
  }

  /** @internal for JobRun */
  emit (type: JobEventType, detail: JobEvent): void {
    if (this.listenerCount(type) === 0) {
      return
    }
    try {
      this.dispatchEvent(new CustomEvent(type, { detail }))
    } catch {
      // a listener threw: that is the app's bug, and must not break the job pipeline
    }
  }

  /**
   * The best worker for the job now, not excluded, not backing off after a
   * busy answer, with a slot reserved there (`release` frees it). Synchronous
   * on purpose: the caller records the placement before anything else runs,
   * so two executions of one job can never land on one worker.
   * @internal for JobRun
   */
  reserve (job: EncodedJob, exclude: ReadonlySet<string>): string | undefined {
    const { scheduler } = this.components
    const now = Date.now()
    const peers = this.available(now)
    const settling = this.firstAdvertAt == null || now - this.firstAdvertAt < ADVERT_SETTLE_MS
    const ranked = scheduler.rank(job, peers, exclude)
    // strangers get a bounded share: now and then the best worker without a record, so it can earn one
    const stranger = Math.random() < EXPLORATION_RATE ? ranked.find(p => !this.components.reputation.hasDelivered(p.peerId)) : undefined
    const best = stranger ?? ranked[0]
    // just joined: adverts are still arriving, and one may come from a worker that has the module
    if (best == null || (settling && !hasModule(best, job))) {
      // a job woken for nothing hands the wake on, unless no job could place now (no room anywhere, or still settling)
      if (this.passLeft > 0 && !settling && exclude.size > 0 && scheduler.rank(job, peers, new Set()).length > 0) {
        this.passLeft--
        this.wakeOne()
      } else {
        this.passLeft = 0
      }
      return undefined
    }
    scheduler.begin(best.peerId)
    return best.peerId
  }

  /**
   * Like `reserve`, for a chunk of up to `jobs` jobs like `job`: the best
   * worker with room for `atLeast` of them, and how many it has room for,
   * all reserved (`release` them). Module caches and records rank workers
   * as for single jobs; strangers are not explored here (single jobs do
   * that), and a chunk only follows receipts, so adverts have settled.
   * @internal for Chunker
   */
  reserveChunk (job: EncodedJob, exclude: ReadonlySet<string>, jobs: number, atLeast = 1): { worker: string, jobs: number } | undefined {
    const { scheduler } = this.components
    const best = scheduler.rank(job, this.available(Date.now()), exclude).find(candidate => scheduler.room(candidate) >= atLeast)
    if (best == null) {
      return undefined
    }
    const reserved = Math.min(jobs, scheduler.room(best))
    scheduler.begin(best.peerId, reserved)
    return { worker: best.peerId, jobs: reserved }
  }

  /** Workers we may send jobs to now: not ourselves, not backing off after a busy or lost answer. */
  private available (now: number): PeerCapacity[] {
    return this.components.capacity.peers().filter(p => p.peerId !== this.selfId && (this.busyUntil.get(p.peerId)?.until ?? 0) <= now)
  }

  /**
   * An execution ended: a slot freed there. Wakes the job waiting longest
   * for a worker, not all of them: with hundreds waiting (a wide `map`), a
   * wake-everyone per answer costs more than the jobs. A job that places
   * wakes the next (`placed`), so freed room is used as long as it lasts.
   * @internal for JobRun
   */
  release (worker: string, jobs = 1): void {
    this.components.scheduler.end(worker, jobs)
    this.startPass()
  }

  /** A job placed an execution: there may be room for the next waiting one too. @internal for JobRun and Chunker */
  placed (): void {
    this.wakeOne()
  }

  private startPass (): void {
    this.passLeft = this.wakers.size
    this.wakeOne()
  }

  /** Room that no job waits for: the running job placed longest ago whose check is drawn now takes it. */
  private offerCheck (): void {
    for (const checkEarly of this.checkable) {
      this.checkable.delete(checkEarly)
      if (checkEarly()) {
        return
      }
    }
  }

  private wakeOne (): void {
    const first = this.wakers.values().next()
    if (first.done !== true) {
      first.value()
    } else {
      this.offerCheck()
    }
  }

  /**
   * Capable workers known besides `exclude`, busy or not: what a job could
   * still be placed on if it waits. `ours`: how many of them are full with
   * our own jobs (backpressure, not absence).
   * @internal for JobRun
   */
  candidates (job: EncodedJob, exclude: ReadonlySet<string>): { known: number, eligible: number, ours: number } {
    const { capacity, scheduler } = this.components
    const peers = capacity.peers().filter(p => p.peerId !== this.selfId)
    const eligible = scheduler.eligible(job, peers, exclude)
    return { known: peers.length, eligible: eligible.length, ours: eligible.filter(p => scheduler.inFlightTo(p.peerId) > 0).length }
  }

  /** A worker answered busy: leave it be for a while, longer each time in a row. @internal for JobRun */
  backOff (worker: string): void {
    const strikes = (this.busyUntil.get(worker)?.strikes ?? 0) + 1
    this.busyUntil.set(worker, { until: Date.now() + Math.min(BUSY_BACKOFF_MAX_MS, BUSY_BACKOFF_MS * 2 ** (strikes - 1)), strikes })
  }

  /** A worker delivered: it is no longer backing off. @internal for JobRun */
  delivered (worker: string, module: string, roundTripMs: number): void {
    this.busyUntil.delete(worker)
    const known = this.roundTrips.get(module)
    this.roundTrips.set(module, known == null ? roundTripMs : known * 0.8 + roundTripMs * 0.2)
    if (this.roundTrips.size > HEALING_MEMORY) {
      this.roundTrips.delete(this.roundTrips.keys().next().value as string)
    }
  }

  /** When an execution of the job gets a backup copy on an idle worker (BACKUP_FACTOR): never before its module's round trip is known. @internal for JobRun */
  backupAfter (job: EncodedJob): number {
    const usual = this.roundTrips.get(job.spec.module.toString())
    return usual != null ? Math.max(BACKUP_MIN_MS, BACKUP_FACTOR * usual) : Infinity
  }

  /**
   * Whether we are at a wide map's tail with room to spare: jobs of ours
   * waited for workers less than HEDGE_FACTOR usual round trips ago, none
   * waits now, and a worker able to take this job has none of ours.
   * @internal for JobRun
   */
  idleWorkerFor (job: EncodedJob, exclude: ReadonlySet<string>): boolean {
    const usual = this.roundTrips.get(job.spec.module.toString()) ?? 0
    if (this.wakers.size > 0 || Date.now() - this.lastWaitAt > HEDGE_FACTOR * usual) {
      return false
    }
    const { scheduler } = this.components
    return scheduler.rank(job, this.available(Date.now()), exclude).some(p => scheduler.inFlightTo(p.peerId) === 0)
  }

  /**
   * How long an execution may go without a result before the job is also
   * sent elsewhere: HEDGE_FACTOR times the usual round trip of the module,
   * or, with none measured yet, FIRST_RUN_HEDGE_MS (a quarter of the time
   * limit if less). Never less than SILENCE_HEDGE_MS.
   * @internal for JobRun
   */
  hedgeAfter (job: EncodedJob): number {
    const usual = this.roundTrips.get(job.spec.module.toString())
    const after = usual != null ? HEDGE_FACTOR * usual : Math.min(FIRST_RUN_HEDGE_MS, job.spec.limits.timeoutMs / 4)
    return Math.max(SILENCE_HEDGE_MS, after)
  }

  /** An accepted result rests on these workers' receipts. @internal for JobRun */
  acceptedOnWordOf (workers: readonly string[], job: string): void {
    this.restsOn.delete(job)
    this.restsOn.set(job, workers)
    if (this.restsOn.size > HEALING_MEMORY) {
      this.restsOn.delete(this.restsOn.keys().next().value as string)
    }
  }

  /**
   * Waits until something may let a job go on: with `anyJob`, by `wake()`
   * (adverts) or, in turn, by a slot freeing anywhere (`release`); always by
   * `own` (the job's own events), the timeout or the signal.
   * @internal for JobRun
   */
  async waitForChange (timeoutMs: number, signal: AbortSignal, options: { own: Set<() => void>, anyJob: boolean }): Promise<void> {
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        if (this.wakers.delete(done)) {
          this.lastWaitAt = Date.now()
        }
        options.own.delete(done)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, Math.max(1, timeoutMs))
      if (options.anyJob) {
        this.wakers.add(done)
        this.lastWaitAt = Date.now()
      }
      options.own.add(done)
      signal.addEventListener('abort', done)
    })
  }

  private readonly onCapacityChange = (): void => {
    this.wake()
  }

  /**
   * Healing: results that rest only on banned workers' receipts (a liar
   * alone, or colluders agreeing) are withdrawn, so they run again elsewhere.
   */
  private readonly onBanned = (event: CustomEvent<string>): void => {
    const worker = event.detail
    const isBanned = (peerId: string): boolean => this.components.reputation.isBanned(peerId)
    const session = [...this.restsOn].filter(([, workers]) => workers.includes(worker) && workers.every(isBanned)).map(([job]) => job)
    for (const job of session) {
      this.restsOn.delete(job)
    }
    void this.components.results.invalidateWordOf(worker, isBanned).catch(() => [] as string[]).then(stored => {
      for (const job of new Set([...session, ...stored])) {
        this.emit('job:invalidated', { job, worker })
      }
    })
  }
}

export function requester (init: RequesterInit = {}): (components: RequesterComponents) => Requester {
  return components => new Requester(components, init)
}
