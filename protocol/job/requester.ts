import { TypedEventEmitter } from 'main-event'
import { toString as bytesToString } from 'uint8arrays/to-string'
import { ADVERT_SETTLE_MS, AUDIT_MAX_TIMEOUT_MS, CHECK_WAIT_MS, EXPLORATION_RATE, MAX_BUSY_PER_JOB, FIRST_RUN_HEDGE_MS, HEALING_MEMORY, HEDGE_FACTOR, SILENCE_HEDGE_MS, BUSY_BACKOFF_MAX_MS, BUSY_BACKOFF_MS, DEADLINE_GRACE_MS, EXTRA_EXECUTIONS, FETCH_TIMEOUT_MS, WORKER_WAIT_MS } from '../constants.ts'
import { CancelledError, ContentFetchError, DeadlineError, TimeLimitError, errorFromWire, errorToWire, InvalidReceiptError, JobFailedError, NoWorkersError, NonZeroExitError, NotEnoughWorkersError, WasmeshError, WorkerBusyError, type WireError } from '../errors.ts'
import { checkOutput, encodeSignedReceipt, verifyReceipt, type Receipt, type VerifiedReceipt } from '../wire/receipt.ts'
import { outcomeKey } from './outcome.ts'
import { fetchMountTrees, type MountTree } from './mount-trees.ts'
import { createJobState, plan, transition, IN_FLIGHT, TERMINAL, type Execution, type ExecutionPhase, type ExecutionPurpose, type JobInput, type JobState } from './state.ts'
import { CONVICTING_QUORUM, judge } from './verdict.ts'
import type { Auditor } from './auditor.ts'
import type { CapacityService } from '../net/capacity.ts'
import type { JobClient } from '../net/job-client.ts'
import type { ContentStore } from '../store/content.ts'
import type { EncodedJob } from '../wire/job.ts'
import type { Evidence, Reputation } from './reputation.ts'
import type { ResultStore } from '../store/results.ts'
import type { Scheduler } from './scheduler.ts'
import type { CID } from 'multiformats/cid'
import type { PeerId } from '@libp2p/interface'

export interface RunResult {
  /** The job spec's CID: the job's identity. */
  job: CID
  output: Uint8Array
  /** The output as UTF-8 text. */
  text: () => string
  /** Each writable mount's final tree, in the order of the job's mounts, fetched and checked against the signed CIDs. */
  mounts: MountTree[]
  /** The receipt of the worker whose output was accepted first. */
  receipt: Receipt
  /** Every verified receipt that agreed with the accepted output, one per distinct worker. */
  receipts: VerifiedReceipt[]
  /** Peer id of the worker that produced `receipt`. */
  worker: string
  /** From submission to accepted output, in milliseconds. */
  durationMs: number
  /** The result was accepted earlier and read back from the result store (`resume`). */
  resumed: boolean
}

export interface JobEvent { job: string, worker?: string, error?: Error, durationMs?: number }

export interface RequesterEvents {
  'job:queued': CustomEvent<JobEvent>
  /** The job was sent to a worker (`worker`). */
  'job:running': CustomEvent<JobEvent>
  /** One execution ended without a usable result (busy, lost, late, refused): another is tried. */
  'job:retry': CustomEvent<JobEvent>
  /** The job's one terminal event when it succeeded. */
  'job:done': CustomEvent<JobEvent>
  /** The job's one terminal event when it failed or was cancelled. */
  'job:failed': CustomEvent<JobEvent>
  /** A result accepted earlier on one worker's word was withdrawn: that worker has been banned. Run the job again. */
  'job:invalidated': CustomEvent<JobEvent>
}

export type JobEventType = keyof RequesterEvents

export interface RequesterComponents {
  peerId: PeerId
  capacity: CapacityService
  client: JobClient
  content: ContentStore
  scheduler: Scheduler
  reputation: Reputation
  results: ResultStore
  /** Runs a disputed job here to settle a 2-to-1 vote; without one, such votes only give strikes. */
  auditor?: Pick<Auditor, 'outcome'>
}

export interface RequesterInit {
  /** Executions a job may use beyond twice its redundancy (lost, late or refused ones included). @default EXTRA_EXECUTIONS */
  maxAttempts?: number
  /** How long to wait for enough distinct workers to advertise. @default WORKER_WAIT_MS */
  workerWaitMs?: number
  /** Time allowed beyond a job's own limit. @default DEADLINE_GRACE_MS */
  deadlineGraceMs?: number
  /**
   * Check single results by running them on a second worker: every result of
   * a worker we do not trust yet, then a share that falls with its record.
   * @default true
   */
  spotCheck?: boolean
}

export interface ExecuteOptions {
  signal: AbortSignal
  /** Take the result from the result store if this job was accepted before, and store new results. */
  resume: boolean
}

/** What the requester keeps of an execution beyond its state: the verified receipt and the output. */
interface Delivered {
  verified: VerifiedReceipt
  output: Uint8Array
  mounts: MountTree[]
}

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
  /** Jobs running with `resume`, by CID. */
  private readonly running = new Map<string, Promise<RunResult>>()
  /** The workers each result accepted in this session rests on, oldest first, at most HEALING_MEMORY of them. */
  private readonly restsOn = new Map<string, readonly string[]>()
  /** Workers that answered busy or could not be reached, and until when we leave them be. */
  private readonly busyUntil = new Map<string, { until: number, strikes: number }>()
  /** How long jobs of each module took to come back, as we measured it (smoothed), for hedging. */
  private readonly roundTrips = new Map<string, number>()
  private firstAdvertAt?: number

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

  /** Something changed that may let a waiting job go: adverts, or an execution ended. */
  wake (): void {
    if (this.firstAdvertAt == null && this.components.capacity.peers().length > 0) {
      this.firstAdvertAt = Date.now()
    }
    for (const waker of [...this.wakers]) {
      waker()
    }
  }

  /**
   * Runs a job and resolves with its accepted result. With `resume`, a job
   * already accepted is read back from the result store, and the same job
   * asked for again while it runs shares that run: one CID, one result.
   */
  async execute (job: EncodedJob, options: ExecuteOptions): Promise<RunResult> {
    if (!options.resume) {
      return this.executeOnce(job, options)
    }
    const key = job.cid.toString()
    let running = this.running.get(key)
    if (running == null) {
      running = this.executeOnce(job, options).finally(() => { this.running.delete(key) })
      this.running.set(key, running)
    }
    return running
  }

  private async executeOnce (job: EncodedJob, options: ExecuteOptions): Promise<RunResult> {
    const started = performance.now()
    const redundancy = job.spec.redundancy
    const run = new JobRun(this, job, options, createJobState(job.cid.toString(), { replicas: redundancy, quorum: Math.floor(redundancy / 2) + 1 }))
    this.emit('job:queued', { job: run.id })
    if (options.resume) {
      const stored = await this.components.results.get(job.cid, options.signal)
      if (stored != null && !this.withdrawn(stored)) {
        run.resumed(stored.receipts[0]?.receipt.worker)
        const mounts = await fetchMountTrees(job, (stored.receipts[0] as VerifiedReceipt).receipt, this.components.content, options.signal)
        return resultOf(job, stored.receipts, stored.output, mounts, 0, true)
      }
    }
    return run.run(started)
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
    const { capacity, scheduler } = this.components
    const now = Date.now()
    const peers = capacity.peers().filter(p => p.peerId !== this.selfId && (this.busyUntil.get(p.peerId)?.until ?? 0) <= now)
    const settling = this.firstAdvertAt == null || now - this.firstAdvertAt < ADVERT_SETTLE_MS
    const ranked = scheduler.rank(job, peers, exclude)
    // strangers get a bounded share: now and then the best worker without a record, so it can earn one
    const stranger = Math.random() < EXPLORATION_RATE ? ranked.find(p => !this.components.reputation.hasDelivered(p.peerId)) : undefined
    const best = stranger ?? ranked[0]
    // just joined: adverts are still arriving, and one may come from a worker that has the module
    if (best == null || (settling && !best.advert.cached.some(cid => cid.equals(job.spec.module)))) {
      return undefined
    }
    scheduler.begin(best.peerId)
    return best.peerId
  }

  /**
   * An execution ended: a slot freed there. Wakes the job waiting longest
   * for a worker, not all of them: with hundreds waiting (a wide `map`), a
   * wake-everyone per answer costs more than the jobs. A job that places
   * wakes the next (`placed`), so freed room is used as long as it lasts.
   * @internal for JobRun
   */
  release (worker: string): void {
    this.components.scheduler.end(worker)
    this.wakeOne()
  }

  /** A job placed an execution: there may be room for the next waiting one too. @internal for JobRun */
  placed (): void {
    this.wakeOne()
  }

  private wakeOne (): void {
    const first = this.wakers.values().next()
    if (first.done !== true) {
      first.value()
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
        this.wakers.delete(done)
        options.own.delete(done)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, Math.max(1, timeoutMs))
      if (options.anyJob) {
        this.wakers.add(done)
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

/** One job's run: its state, the loop that carries out its plan, and the executions it drives. */
class JobRun {
  readonly id: string
  private readonly requester: Requester
  private readonly job: EncodedJob
  private readonly options: ExecuteOptions
  private state: JobState
  private readonly delivered = new Map<number, Delivered>()
  private readonly controller = new AbortController()
  private readonly signal: AbortSignal
  /** Whether the single result's check was decided (drawn once per job). */
  private checkDecided = false
  /** An error no other worker could avoid (e.g. the worker refused the job as invalid): the job fails with it. */
  private fatal?: Error
  /** When the job started waiting for workers it does not have. */
  private waitingSince?: number
  /** When the single result's check was asked for: it waits for a checker at most CHECK_WAIT_MS. */
  private checkSince?: number
  /** When each execution was sent, and when its worker first said anything. */
  private readonly timing = new Map<number, { sentAt: number, heardAt?: number }>()
  /** Wakes this job's loop when one of its executions moves on. */
  private readonly wakers = new Set<() => void>()

  constructor (requester: Requester, job: EncodedJob, options: ExecuteOptions, state: JobState) {
    this.requester = requester
    this.job = job
    this.options = options
    this.state = state
    this.id = state.job
    this.signal = AbortSignal.any([options.signal, this.controller.signal])
  }

  /** A stored result stands in for a run. */
  resumed (worker: string | undefined): void {
    this.apply({ type: 'accept', outcome: 'stored' })
    this.requester.emit('job:done', { job: this.id, worker, durationMs: 0 })
  }

  async run (started: number): Promise<RunResult> {
    try {
      this.apply({ type: 'schedule' })
      while (true) {
        if (this.options.signal.aborted) {
          throw this.cancel()
        }
        if (this.fatal != null) {
          throw this.fail(this.fatal)
        }
        const overdue = this.overdue()
        const next = plan(this.state, { maxExecutions: this.maxExecutions(), overdue })
        if (next.action === 'accept') {
          const result = await this.settle(next.agreeing, next.dissenting, started)
          if (result != null) {
            return result
          }
        } else if (next.action === 'launch') {
          await this.launch(next.count, next.purpose)
        } else if (next.action === 'wait') {
          // only its own executions can move it on (or their hedge time): other jobs' events need not wake it
          await this.requester.waitForChange(this.untilNextOverdue(), this.signal, { own: this.wakers, anyJob: false })
        } else if (next.unchecked != null && await this.settleUnchecked(next.unchecked)) {
          continue
        } else {
          throw this.fail(this.failure(next.reason))
        }
      }
    } catch (err) {
      // whatever went wrong, the job ends with exactly one terminal event
      if (!TERMINAL.has(this.state.phase)) {
        this.fail(err as Error)
      }
      throw err
    } finally {
      // executions still out (extra replicas, hedges) are cancelled; most jobs have none, and skip building the error
      if (this.state.executions.some(e => IN_FLIGHT.has(e.phase))) {
        this.controller.abort(new CancelledError('the job has ended'))
      }
    }
  }

  /** In-flight executions we stopped counting on: silent past SILENCE_HEDGE_MS, or without a result past the hedge time. */
  private overdue (): Set<number> {
    const now = performance.now()
    const hedgeAfter = this.requester.hedgeAfter(this.job)
    const overdue = new Set<number>()
    for (const execution of this.state.executions) {
      const timing = this.timing.get(execution.id)
      if (timing != null && IN_FLIGHT.has(execution.phase) && (now - timing.sentAt > hedgeAfter || (timing.heardAt == null && now - timing.sentAt > SILENCE_HEDGE_MS))) {
        overdue.add(execution.id)
      }
    }
    return overdue
  }

  /** How long to wait before an execution in flight becomes overdue (at most a second: adverts may change things sooner). */
  private untilNextOverdue (): number {
    const now = performance.now()
    const hedgeAfter = this.requester.hedgeAfter(this.job)
    let wait = 1000
    for (const execution of this.state.executions) {
      const timing = this.timing.get(execution.id)
      if (timing != null && IN_FLIGHT.has(execution.phase)) {
        const silentAt = timing.heardAt == null ? timing.sentAt + SILENCE_HEDGE_MS : Infinity
        wait = Math.min(wait, Math.min(silentAt, timing.sentAt + hedgeAfter) - now + 1)
      }
    }
    return Math.max(1, wait)
  }

  /**
   * The single result's check could not be had (checkers lost, silent or
   * busy to the end of the budget): our own run settles it when we can,
   * else the result stands, resting on one worker's word.
   */
  private async settleUnchecked (unchecked: readonly Execution[]): Promise<boolean> {
    const audit = await this.audit()
    if (audit == null) {
      this.apply({ type: 'want', quorum: unchecked.length })
      return true
    }
    if (audit === unchecked[0]?.outcome) {
      return true // the plan accepts the group our run agrees with
    }
    for (const execution of unchecked) {
      await this.requester.components.reputation.convict(this.evidence(this.delivered.get(execution.id)?.verified, audit), `signed an outcome for job ${this.id} that our own run contradicted`)
    }
    return false
  }

  /** The error a job fails with: the cause every execution ran into, when there was one. */
  private failure (reason: string): Error {
    const errors = this.errors()
    if (errors.length > 0 && errors.every(e => e.name === ContentFetchError.NAME)) {
      return new ContentFetchError(`job ${this.id} failed: none of the ${errors.length} workers it tried could fetch what it needs (${errors.at(-1)?.message ?? ''}); keep a peer that holds the module and input online, or pass their bytes`)
    }
    return new JobFailedError(`job ${this.id} failed: ${reason}${this.lastError()}`, errors)
  }

  private maxExecutions (): number {
    return this.job.spec.redundancy * 2 + (this.requester.init.maxAttempts ?? EXTRA_EXECUTIONS)
  }

  /** Feeds one event through the state machine, and emits what the transition means. */
  private apply (input: JobInput): void {
    const before = this.state
    this.state = transition(before, input)
    if (input.type === 'execution') {
      const execution = this.state.executions[input.id] as Execution
      if (input.phase === 'sent') {
        this.requester.emit('job:running', { job: this.id, worker: execution.worker })
      } else if (['busy', 'lost', 'timed-out', 'failed', 'rejected'].includes(input.phase)) {
        this.requester.emit('job:retry', { job: this.id, worker: execution.worker, error: input.error != null ? errorFromWire(input.error) : undefined })
      }
    }
  }

  /** Places up to `count` executions on distinct workers; waits (or gives up) when there are none to place on. */
  private async launch (count: number, purpose: ExecutionPurpose): Promise<void> {
    let placed = 0
    for (let i = 0; i < count; i++) {
      const worker = this.requester.reserve(this.job, this.excluded())
      if (worker == null) {
        break
      }
      this.apply({ type: 'place', worker, purpose })
      placed++
      void this.drive(this.state.executions.length - 1, worker)
    }
    if (placed > 0) {
      this.waitingSince = undefined
      this.requester.placed()
      return
    }
    await this.noWorker(purpose)
  }

  /** Workers this job may not use again: every one it ran on (or tried), and those that kept answering busy. */
  private excluded (): Set<string> {
    const busy = new Map<string, number>()
    const excluded = new Set<string>()
    for (const e of this.state.executions) {
      if (e.phase !== 'busy') {
        excluded.add(e.worker)
      } else if ((busy.get(e.worker) ?? 0) + 1 >= MAX_BUSY_PER_JOB) {
        excluded.add(e.worker)
      } else {
        busy.set(e.worker, (busy.get(e.worker) ?? 0) + 1)
      }
    }
    return excluded
  }

  /** Nobody to place an execution on right now: wait for one, settle without it, or give up. */
  private async noWorker (purpose: ExecutionPurpose): Promise<void> {
    const { known, eligible, ours } = this.requester.candidates(this.job, this.excluded())
    // executions we stopped counting on (silent, far too slow) are not worth waiting for
    const overdue = this.overdue()
    const inFlight = this.state.executions.some(e => IN_FLIGHT.has(e.phase) && !overdue.has(e.id))
    const waitMs = this.requester.init.workerWaitMs ?? WORKER_WAIT_MS
    this.waitingSince ??= Date.now()
    const waited = Date.now() - this.waitingSince
    const waitedOut = waited >= waitMs
    if (purpose === 'check' && !inFlight && (eligible === 0 || Date.now() - (this.checkSince ?? Date.now()) >= Math.min(waitMs, CHECK_WAIT_MS))) {
      // the check is best effort: with no second worker to ask, the single result stands (taken on one word: healing may revisit it)
      this.apply({ type: 'want', quorum: 1 })
      return
    }
    if (purpose === 'decider' && eligible === 0 && !inFlight && await this.audit() != null) {
      return // our own run decides it
    }
    // workers full with our own jobs free up: that is backpressure, and waits as long as it takes
    if (ours === 0 && !inFlight && waitedOut) {
      const distinct = this.state.executions.filter(e => e.phase !== 'busy').map(e => e.worker)
      const found = new Set(distinct).size + eligible
      throw this.fail(known === 0
        ? new NoWorkersError(`no worker advertised capacity within ${waitMs} ms: start one with \`wasmesh peer\`, or open the page and switch on Contribute`)
        : purpose === 'replica' && this.job.spec.redundancy > 1
          ? new NotEnoughWorkersError(`redundancy ${this.job.spec.redundancy} needs ${this.job.spec.redundancy} distinct workers, and only ${found} could take this job within ${waitMs} ms`)
          : this.failure(`none of the ${known} known workers could take it within ${waitMs} ms (all tried, banned, backing off after busy or lost answers, or unable to give ${this.job.spec.limits.memoryBytes} bytes of memory)`))
    }
    await this.requester.waitForChange(Math.max(1, Math.min(1000, waitMs - (Date.now() - this.waitingSince))), this.signal, { own: this.wakers, anyJob: true })
  }

  /** Runs one execution on `worker` and feeds what happens into the state machine. */
  private async drive (id: number, worker: string): Promise<void> {
    const { client, reputation } = this.requester.components
    const deadlineMs = this.job.spec.limits.timeoutMs + (this.requester.init.deadlineGraceMs ?? DEADLINE_GRACE_MS)
    const deadline = AbortSignal.timeout(deadlineMs)
    const sentAt = performance.now()
    const timing: { sentAt: number, heardAt?: number } = { sentAt }
    this.timing.set(id, timing)
    let verified: VerifiedReceipt
    try {
      this.apply({ type: 'execution', id, phase: 'sent' })
      const signed = await client.submit(worker, this.job, {
        signal: AbortSignal.any([this.signal, deadline]),
        onAccepted: () => {
          timing.heardAt = performance.now()
          this.settleExecution(id, 'running')
        }
      })
      timing.heardAt ??= performance.now()
      this.settleExecution(id, 'receipted')
      verified = await verifyReceipt(signed, { job: this.job.cid, worker })
    } catch (err) {
      const error = err as Error
      const phase: ExecutionPhase = this.signal.aborted
        ? 'cancelled'
        : error instanceof WorkerBusyError
          ? 'busy'
          : deadline.aborted
            ? 'timed-out'
            : error instanceof InvalidReceiptError
              ? 'rejected'
              : error instanceof WasmeshError && !error.retryable ? 'failed' : 'lost'
      const reported = phase === 'timed-out' ? new DeadlineError(`${worker} did not answer within the job's deadline of ${deadlineMs} ms`) : error
      this.settleExecution(id, phase, reported)
      if (phase === 'busy' || phase === 'lost') {
        // full, unreachable or gone: leave it be for a while, longer each time in a row
        this.requester.backOff(worker)
      }
      if (phase === 'busy') {
        // not held against a worker that is merely full: the backoff is its cost
      } else if (phase === 'failed') {
        // the worker refused the job itself (malformed, too large): believed once a second worker says the same, or nobody else can try
        const same = this.state.executions.filter(e => e.phase === 'failed' && e.error?.name === error.name)
        if (same.length >= 2 || this.requester.candidates(this.job, this.excluded()).eligible === 0) {
          this.fatal = error
        }
      } else if (phase !== 'cancelled') {
        reputation.failed(worker, phase === 'timed-out' ? 'timeout' : 'failure')
      }
      return
    } finally {
      this.requester.release(worker)
    }
    const roundTripMs = performance.now() - sentAt
    try {
      const output = await this.outputOf(verified.receipt)
      const mounts = await fetchMountTrees(this.job, verified.receipt, this.requester.components.content, this.signal)
      this.checkTimeClaim(verified, roundTripMs)
      this.delivered.set(id, { verified, output, mounts })
      this.requester.delivered(worker, this.job.spec.module.toString(), roundTripMs)
      reputation.succeeded(worker, roundTripMs)
      this.settleExecution(id, 'verified', undefined, outcomeKey(verified.receipt))
    } catch (err) {
      reputation.failed(worker, 'failure')
      this.settleExecution(id, 'rejected', err as Error)
    }
  }

  /** An execution's event, unless the job ended meanwhile (late answers are dropped). */
  private settleExecution (id: number, phase: ExecutionPhase, error?: Error, outcome?: string): void {
    if (TERMINAL.has(this.state.phase) || this.state.executions[id]?.phase === phase) {
      return
    }
    this.apply({ type: 'execution', id, phase, ...(error != null ? { error: errorToWire(error) } : {}), ...(outcome != null ? { outcome } : {}) })
    for (const waker of [...this.wakers]) {
      waker()
    }
  }

  /** The receipt's output: inline, or fetched by CID within a deadline and checked against the signed hash. */
  private async outputOf (receipt: Receipt): Promise<Uint8Array> {
    if (receipt.output instanceof Uint8Array) {
      return receipt.output
    }
    const output = await this.requester.components.content.get(receipt.output, {
      signal: AbortSignal.any([this.signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)]),
      maxBytes: this.job.spec.limits.outputBytes,
      what: 'output'
    })
    await checkOutput(receipt, output)
    return output
  }

  /**
   * A receipt claiming the time limit, for a job whose whole round trip took
   * less than that limit by our own clock, is a signed lie: the worker is
   * convicted at once, with the receipt as evidence.
   */
  private checkTimeClaim (verified: VerifiedReceipt, roundTripMs: number): void {
    const { receipt } = verified
    const limitMs = this.job.spec.limits.timeoutMs
    if (receipt.error?.name === 'TimeLimitError' && roundTripMs < limitMs) {
      void this.requester.components.reputation.convict(this.evidence(verified, ''), `claimed the ${limitMs} ms time limit for job ${this.id}, but answered within ${Math.round(roundTripMs)} ms`)
      throw new InvalidReceiptError(`the receipt claims the job ran into its ${limitMs} ms time limit, but it came back after ${Math.round(roundTripMs)} ms`)
    }
  }

  /**
   * An outcome has its quorum. Decides whether a single result needs a check
   * first (then returns undefined and the loop launches it), judges
   * dissenters, and ends the job: the accepted result, or the module's own
   * failure as reported by the agreeing receipts.
   */
  private async settle (agreeing: readonly Execution[], dissenting: readonly Execution[], started: number): Promise<RunResult | undefined> {
    const { reputation } = this.requester.components
    const first = agreeing[0] as Execution
    if (this.state.wanted.quorum === 1 && !this.checkDecided) {
      this.checkDecided = true
      if (this.requester.init.spotCheck !== false && reputation.needsCheck(first.worker) && this.requester.candidates(this.job, this.excluded()).eligible > 0) {
        this.checkSince = Date.now()
        this.apply({ type: 'want', quorum: 2 })
        return undefined
      }
    }
    this.apply({ type: 'verify' })
    // a thin majority against a real dissent: our own run settles it, and may side with the minority
    if (this.state.audit == null && agreeing.length < CONVICTING_QUORUM && dissenting.some(e => e.error?.name !== TimeLimitError.NAME) && await this.audit() != null) {
      return undefined // plan again: the audited group wins
    }
    const verdict = judge({ agreeing, dissenting, audit: this.state.audit })
    for (const execution of verdict.convict) {
      await reputation.convict(this.evidence(this.delivered.get(execution.id)?.verified, verdict.outcome), `signed an outcome for job ${this.id} that ${verdict.accepted.length} agreeing workers${this.audited != null ? ' and our own run' : ''} contradicted`)
    }
    for (const execution of verdict.strike) {
      await reputation.strike(this.evidence(this.delivered.get(execution.id)?.verified, verdict.outcome), verdict.accepted.map(e => e.worker))
    }
    for (const execution of verdict.slow) {
      reputation.failed(execution.worker, 'timeout')
    }
    // outrun while silent or far slower than usual: that counts against them, and they are left be for a while
    for (const id of this.overdue()) {
      const straggler = this.state.executions[id] as Execution
      reputation.failed(straggler.worker, 'timeout')
      this.requester.backOff(straggler.worker)
    }
    if (verdict.accepted.length > 1) {
      for (const execution of verdict.accepted) {
        reputation.confirm(execution.worker)
      }
    }
    const accepted = verdict.accepted.map(e => this.delivered.get(e.id) as Delivered)
    const { receipt } = (accepted[0] as Delivered).verified
    const durationMs = performance.now() - started
    this.requester.acceptedOnWordOf(verdict.accepted.map(e => e.worker), this.id)
    this.apply({ type: 'accept', outcome: verdict.outcome })
    const output = (accepted[0] as Delivered).output
    if (receipt.exitCode !== 0 || receipt.error != null) {
      const error = receipt.error != null
        ? errorFromWire(receipt.error)
        : new NonZeroExitError(`the module exited with code ${receipt.exitCode}${receipt.stderr.byteLength > 0 ? `: ${bytesToString(receipt.stderr).trim().split('\n').at(-1) ?? ''}` : ''}`)
      error.receipt = receipt
      error.signed = (accepted[0] as Delivered).verified.signed
      error.output = output
      error.mounts = (accepted[0] as Delivered).mounts
      await this.persistFailure(error)
      this.requester.emit('job:failed', { job: this.id, worker: receipt.worker, error, durationMs })
      throw error
    }
    const receipts = accepted.map(d => d.verified)
    if (this.options.resume) {
      await this.requester.components.results.put(this.job.cid, { receipts, output }, this.options.signal)
    }
    this.requester.emit('job:done', { job: this.id, worker: receipt.worker, durationMs })
    return resultOf(this.job, receipts, output, (accepted[0] as Delivered).mounts, durationMs, false)
  }

  /** The outcome of our own run, once per job, or undefined when we cannot audit this job. */
  private audited?: Promise<string | undefined>

  private async audit (): Promise<string | undefined> {
    const { auditor } = this.requester.components
    if (auditor == null || this.job.spec.limits.timeoutMs > AUDIT_MAX_TIMEOUT_MS) {
      return undefined
    }
    this.audited ??= auditor.outcome(this.job, this.signal).catch(() => undefined)
    const outcome = await this.audited
    if (outcome != null && this.state.audit == null && !TERMINAL.has(this.state.phase)) {
      this.apply({ type: 'audited', outcome })
    }
    return outcome
  }

  private evidence (verified: VerifiedReceipt | undefined, acceptedOutcome: string): Evidence {
    return {
      job: this.id,
      worker: verified?.receipt.worker ?? '',
      acceptedHash: acceptedOutcome.split(':')[0] ?? '',
      receipt: verified != null ? encodeSignedReceipt(verified.signed) : new Uint8Array(0),
      at: Date.now()
    }
  }

  private cancel (): Error {
    const reason = this.options.signal.reason
    const error = reason instanceof Error ? reason : new CancelledError(`job ${this.id} was cancelled`)
    this.apply({ type: 'cancel', error: errorToWire(error) })
    this.requester.emit('job:failed', { job: this.id, error })
    return error
  }

  private fail (error: Error): Error {
    this.apply({ type: 'fail', error: errorToWire(error) })
    void this.persistFailure(error)
    this.requester.emit('job:failed', { job: this.id, error })
    return error
  }

  private async persistFailure (error: Error): Promise<void> {
    if (this.options.resume) {
      await this.requester.components.results.putFailure(this.job.cid, errorToWire(error)).catch(() => {})
    }
  }

  /** Why executions that gave no result ended, for the job's error. */
  private errors (): Error[] {
    return this.state.executions.filter(e => e.error != null).map(e => errorFromWire(e.error as WireError))
  }

  private lastError (): string {
    const last = this.state.executions.findLast(e => e.error != null)?.error
    return last != null ? `; last error: ${last.message}` : ''
  }
}

function resultOf (job: EncodedJob, receipts: VerifiedReceipt[], output: Uint8Array, mounts: MountTree[], durationMs: number, resumed: boolean): RunResult {
  const receipt = (receipts[0] as VerifiedReceipt).receipt
  return { job: job.cid, output, text: () => bytesToString(output), mounts, receipt, receipts, worker: receipt.worker, durationMs, resumed }
}

export function requester (init: RequesterInit = {}): (components: RequesterComponents) => Requester {
  return components => new Requester(components, init)
}
