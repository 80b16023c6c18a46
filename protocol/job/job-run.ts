import { toString as bytesToString } from 'uint8arrays/to-string'
import { AUDIT_MAX_TIMEOUT_MS, CHECK_WAIT_MS, DEADLINE_GRACE_MS, EXTRA_EXECUTIONS, FETCH_TIMEOUT_MS, MAX_BUSY_PER_JOB, SILENCE_HEDGE_MS, WORKER_WAIT_MS } from '../constants.ts'
import { CancelledError, ContentFetchError, DeadlineError, TimeLimitError, errorFromWire, errorToWire, InvalidReceiptError, JobFailedError, NoWorkersError, NonZeroExitError, NotEnoughWorkersError, WasmeshError, WorkerBusyError, type WireError } from '../errors.ts'
import { checkOutput, encodeSignedReceipt, receiptSucceeded, verifyReceipt, type Receipt, type VerifiedReceipt } from '../wire/receipt.ts'
import { outcomeKey } from './outcome.ts'
import { fetchMountTrees, type MountTree } from './mount-trees.ts'
import { plan, transition, IN_FLIGHT, TERMINAL, type Execution, type ExecutionPhase, type ExecutionPurpose, type JobInput, type JobState } from './state.ts'
import { CONVICTING_QUORUM, judge } from './verdict.ts'
import type { EncodedJob } from '../wire/job.ts'
import type { Evidence, Reputation } from './reputation.ts'
import type { ExecuteOptions, JobEvent, JobEventType, RequesterComponents, RequesterInit, RunResult } from './job-types.ts'

/** Executions whose worker gave a result, and those whose worker is not asked again for this job: the counts a failure names. */
const DELIVERED: ReadonlySet<ExecutionPhase> = new Set(['receipted', 'verified'])
const SPENT: ReadonlySet<ExecutionPhase> = new Set(['rejected', 'lost', 'timed-out', 'failed'])

/** What a job's run uses of the requester that carries it out: placement, backoff and round trips, shared by all its jobs. */
export interface JobRunHost {
  readonly components: RequesterComponents
  readonly init: RequesterInit
  emit: (type: JobEventType, detail: JobEvent) => void
  reserve: (job: EncodedJob, exclude: ReadonlySet<string>) => string | undefined
  release: (worker: string) => void
  placed: () => void
  candidates: (job: EncodedJob, exclude: ReadonlySet<string>) => { known: number, eligible: number, ours: number }
  backOff: (worker: string) => void
  delivered: (worker: string, module: string, roundTripMs: number) => void
  hedgeAfter: (job: EncodedJob) => number
  backupAfter: (job: EncodedJob) => number
  idleWorkerFor: (job: EncodedJob, exclude: ReadonlySet<string>) => boolean
  acceptedOnWordOf: (workers: readonly string[], job: string) => void
  waitForChange: (timeoutMs: number, signal: AbortSignal, options: { own: Set<() => void>, anyJob: boolean }) => Promise<void>
  checkable: Set<() => boolean>
  keepResult: (job: EncodedJob, result: { receipts: VerifiedReceipt[], output: Uint8Array }, signal: AbortSignal) => Promise<void>
  keepFailure: (job: EncodedJob, error: Error) => Promise<void>
}

/** What the requester keeps of an execution beyond its state: the verified receipt and the output. */
interface Delivered {
  verified: VerifiedReceipt
  output: Uint8Array
  mounts: MountTree[]
}

/** One job's run: its state, the loop that carries out its plan, and the executions it drives. */
export class JobRun {
  readonly id: string
  private readonly requester: JobRunHost
  private readonly job: EncodedJob
  private readonly options: ExecuteOptions
  private state: JobState
  private readonly delivered = new Map<number, Delivered>()
  private readonly controller = new AbortController()
  private readonly signal: AbortSignal
  /** Executions a backup copy was sent beside (notCountedOn): the first verified result wins, and the other is not held against its worker. */
  private readonly backedUp = new Set<number>()
  /**
   * The worker the single result's check was drawn for: once per worker, so
   * a draw made while one worker computed the job does not cover another's
   * result should the job move.
   */
  private checkDrawnFor?: string
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

  constructor (requester: JobRunHost, job: EncodedJob, options: ExecuteOptions, state: JobState) {
    this.requester = requester
    this.job = job
    this.options = options
    this.state = state
    this.id = state.job
    // the caller's signal reaches it through a listener run() adds: AbortSignal.any per job costs a wide map dearly
    this.signal = this.controller.signal
  }

  async run (started: number): Promise<RunResult> {
    const onAbort = (): void => { this.controller.abort(this.options.signal.reason) }
    this.options.signal.addEventListener('abort', onAbort, { once: true })
    try {
      this.apply({ type: 'schedule' })
      this.startFrom(this.options.prior ?? [])
      while (true) {
        if (this.options.signal.aborted) {
          throw this.cancel()
        }
        if (this.fatal != null) {
          throw this.fail(this.fatal)
        }
        const next = plan(this.state, { maxExecutions: this.maxExecutions(), overdue: this.notCountedOn() })
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
      this.requester.checkable.delete(this.checkEarly)
      this.options.signal.removeEventListener('abort', onAbort)
      // executions still out (extra replicas, hedges) are cancelled; most jobs have none, and skip building the error
      if (this.state.executions.some(e => IN_FLIGHT.has(e.phase))) {
        this.controller.abort(new CancelledError('the job has ended'))
      }
    }
  }

  /**
   * Takes receipts other workers already gave as this job's first
   * executions. Two or more came from a replica and its check, or from
   * replicas: the check is decided, and a single result's quorum becomes
   * two, so a disagreement among them is settled as any other.
   */
  private startFrom (prior: readonly VerifiedReceipt[]): void {
    for (const verified of prior) {
      const { receipt } = verified
      this.apply({ type: 'place', worker: receipt.worker, purpose: this.state.executions.length < this.job.spec.redundancy ? 'replica' : 'check' })
      const id = this.state.executions.length - 1
      this.apply({ type: 'execution', id, phase: 'sent' })
      this.apply({ type: 'execution', id, phase: 'receipted' })
      this.delivered.set(id, { verified, output: receipt.output as Uint8Array, mounts: [] })
      this.apply({ type: 'execution', id, phase: 'verified', outcome: outcomeKey(receipt) })
    }
    if (prior.length > 1) {
      this.checkDrawnFor = prior[0]?.receipt.worker
      this.apply({ type: 'want', quorum: Math.max(2, this.state.wanted.quorum) })
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

  /**
   * In-flight executions the plan does not count on: the overdue, and those
   * a backup copy runs beside. An execution past its backup time gets one
   * when a worker is idle and no job of ours waits (a map's tail).
   */
  private notCountedOn (): Set<number> {
    const skipped = this.overdue()
    const now = performance.now()
    const backupAfter = this.requester.backupAfter(this.job)
    for (const execution of this.state.executions) {
      const timing = this.timing.get(execution.id)
      if (timing == null || !IN_FLIGHT.has(execution.phase) || skipped.has(execution.id)) {
        continue
      }
      if (this.backedUp.has(execution.id) || (now - timing.sentAt > backupAfter && this.requester.idleWorkerFor(this.job, this.excluded()))) {
        this.backedUp.add(execution.id)
        skipped.add(execution.id)
      }
    }
    return skipped
  }

  /** How long to wait before an execution in flight becomes overdue or due a backup (at most a second: adverts may change things sooner). */
  private untilNextOverdue (): number {
    const now = performance.now()
    const hedgeAfter = this.requester.hedgeAfter(this.job)
    const backupAfter = this.requester.backupAfter(this.job)
    let wait = 1000
    for (const execution of this.state.executions) {
      const timing = this.timing.get(execution.id)
      if (timing != null && IN_FLIGHT.has(execution.phase)) {
        const silentAt = timing.heardAt == null ? timing.sentAt + SILENCE_HEDGE_MS : Infinity
        // a backup time already past waits for idle room: the second-long look covers it
        const backupAt = timing.sentAt + backupAfter > now && !this.backedUp.has(execution.id) ? timing.sentAt + backupAfter : Infinity
        wait = Math.min(wait, Math.min(silentAt, backupAt, timing.sentAt + hedgeAfter) - now + 1)
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
      if (this.state.wanted.quorum === 1 && this.checkDrawnFor == null && this.requester.init.spotCheck !== false) {
        this.requester.checkable.add(this.checkEarly)
      }
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
    // but one its worker took (it answered, and heartbeats keep the stream) may still deliver before its deadline:
    // a hedge that finds no other worker waits for it rather than failing a job that is being computed
    const taken = this.state.executions.some(e => IN_FLIGHT.has(e.phase) && this.timing.get(e.id)?.heardAt != null)
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
    if (ours === 0 && !inFlight && !taken && waitedOut) {
      const workersIn = (phases: ReadonlySet<ExecutionPhase>): number => new Set(this.state.executions.filter(e => phases.has(e.phase)).map(e => e.worker)).size
      const delivered = workersIn(DELIVERED)
      const spent = workersIn(SPENT)
      throw this.fail(known === 0
        ? new NoWorkersError(`no worker advertised capacity within ${waitMs} ms: start one with \`wasmesh peer\`, or open the page and switch on Contribute`)
        : purpose === 'replica' && this.job.spec.redundancy > 1
          ? new NotEnoughWorkersError(`redundancy ${this.job.spec.redundancy} needs ${this.job.spec.redundancy} distinct workers, and only ${delivered + eligible} could take this job within ${waitMs} ms (${delivered} gave a result${spent > 0 ? `; ${spent} more lost it, timed out or failed and are not asked again` : ''})`)
          : this.failure(`none of the ${known} known workers could take it within ${waitMs} ms (all tried, banned, backing off after busy or lost answers, or unable to give ${this.job.spec.limits.memoryBytes} bytes of memory)`))
    }
    // past the worker wait (backpressure, or an execution still being computed) look again each second, not every millisecond
    await this.requester.waitForChange(waitedOut ? 1000 : Math.max(1, Math.min(1000, waitMs - waited)), this.signal, { own: this.wakers, anyJob: true })
  }

  /** Runs one execution on `worker` and feeds what happens into the state machine. */
  private async drive (id: number, worker: string): Promise<void> {
    const { client, reputation } = this.requester.components
    const deadlineMs = this.job.spec.limits.timeoutMs + (this.requester.init.deadlineGraceMs ?? DEADLINE_GRACE_MS)
    // the job's signal or the deadline, whichever comes first (a controller and a timer: cheaper than AbortSignal.any and .timeout per execution)
    const execution = new AbortController()
    let timedOut = false
    const deadline = setTimeout(() => {
      timedOut = true
      execution.abort(new DeadlineError(`${worker} did not answer within the job's deadline of ${deadlineMs} ms`))
    }, Math.min(deadlineMs, 2 ** 31 - 1))
    const onAbort = (): void => { execution.abort(this.signal.reason) }
    this.signal.addEventListener('abort', onAbort, { once: true })
    if (this.signal.aborted) {
      onAbort()
    }
    const sentAt = performance.now()
    const timing: { sentAt: number, heardAt?: number } = { sentAt }
    this.timing.set(id, timing)
    let verified: VerifiedReceipt
    try {
      this.apply({ type: 'execution', id, phase: 'sent' })
      const signed = await client.submit(worker, this.job, {
        signal: execution.signal,
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
          : timedOut
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
      clearTimeout(deadline)
      this.signal.removeEventListener('abort', onAbort)
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
      // the job ended (decided elsewhere, or cancelled) while we fetched this one's output: no verdict on its worker
      if (!this.signal.aborted) {
        reputation.failed(worker, 'failure')
      }
      this.settleExecution(id, 'rejected', err as Error)
    }
  }

  /** An execution's event, unless the job ended meanwhile (late answers are dropped). */
  private settleExecution (id: number, phase: ExecutionPhase, error?: Error, outcome?: string): void {
    if (TERMINAL.has(this.state.phase) || this.state.executions[id]?.phase === phase) {
      return
    }
    this.apply({ type: 'execution', id, phase, ...(error != null ? { error: errorToWire(error) } : {}), ...(outcome != null ? { outcome } : {}) })
    this.wakeLoop()
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

  /** Wakes this job's loop: one of its executions moved on, or its plan changed. */
  private wakeLoop (): void {
    for (const wake of [...this.wakers]) {
      wake()
    }
  }

  /**
   * Draws whether the single result of `worker` is checked (at the rate its
   * record calls for) and, if so, asks for a second agreeing execution.
   */
  private drawCheck (worker: string): boolean {
    this.checkDrawnFor = worker
    if (this.requester.init.spotCheck === false || !this.requester.components.reputation.needsCheck(worker) || this.requester.candidates(this.job, this.excluded()).eligible === 0) {
      return false
    }
    this.checkSince = Date.now()
    this.apply({ type: 'want', quorum: 2 })
    return true
  }

  /**
   * Room freed and no job waits for it (a map's tail, a lone run): the check
   * of the result still being computed is drawn now, for the worker computing
   * it, and runs beside it instead of after it. Returns whether it will.
   */
  private readonly checkEarly = (): boolean => {
    const running = this.state.executions.filter(e => IN_FLIGHT.has(e.phase))
    if (this.checkDrawnFor != null || this.state.wanted.quorum !== 1 || running.length !== 1 || TERMINAL.has(this.state.phase)) {
      return false
    }
    if (!this.drawCheck((running[0] as Execution).worker)) {
      return false
    }
    this.wakeLoop()
    return true
  }

  private checkTimeClaim (verified: VerifiedReceipt, roundTripMs: number): void {
    checkTimeClaim(this.job, verified, roundTripMs, this.requester.components.reputation)
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
    if (this.state.wanted.quorum === 1 && this.checkDrawnFor !== first.worker) {
      this.requester.checkable.delete(this.checkEarly)
      if (this.drawCheck(first.worker)) {
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
      if (this.backedUp.has(id)) {
        continue // copied at a map's tail before it was due a hedge: no verdict on its worker
      }
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
    if (!receiptSucceeded(receipt)) {
      const error = moduleFailure((accepted[0] as Delivered).verified, output, (accepted[0] as Delivered).mounts)
      await this.persistFailure(error)
      this.requester.emit('job:failed', { job: this.id, worker: receipt.worker, error, durationMs })
      throw error
    }
    const receipts = accepted.map(d => d.verified)
    if (this.options.resume) {
      await this.requester.keepResult(this.job, { receipts, output }, this.options.signal)
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
    return evidenceOf(this.id, verified, acceptedOutcome)
  }

  private cancel (): Error {
    const error = cancellation(this.options.signal, this.id)
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
      await this.requester.keepFailure(this.job, error)
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

/** The error a job ends with when its caller's signal aborted: the caller's reason, or a CancelledError. */
export function cancellation (signal: AbortSignal, job: string): Error {
  const reason = signal.reason
  return reason instanceof Error ? reason : new CancelledError(`job ${job} was cancelled`)
}

/** A worker's signed receipt, kept against it, with the outcome the job accepted instead ('' for a lie shown otherwise). */
export function evidenceOf (job: string, verified: VerifiedReceipt | undefined, acceptedOutcome: string): Evidence {
  return {
    job,
    worker: verified?.receipt.worker ?? '',
    acceptedHash: acceptedOutcome.split(':')[0] ?? '',
    receipt: verified != null ? encodeSignedReceipt(verified.signed) : new Uint8Array(0),
    at: Date.now()
  }
}

/**
 * A receipt claiming the time limit, for a job whose whole round trip took
 * less than that limit by our own clock, is a signed lie: the worker is
 * convicted at once, with the receipt as evidence, and the receipt refused.
 */
export function checkTimeClaim (job: EncodedJob, verified: VerifiedReceipt, roundTripMs: number, reputation: Pick<Reputation, 'convict'>): void {
  const { receipt } = verified
  const limitMs = job.spec.limits.timeoutMs
  if (receipt.error?.name === TimeLimitError.NAME && roundTripMs < limitMs) {
    const id = job.cid.toString()
    void reputation.convict(evidenceOf(id, verified, ''), `claimed the ${limitMs} ms time limit for job ${id}, but answered within ${Math.round(roundTripMs)} ms`)
    throw new InvalidReceiptError(`the receipt claims the job ran into its ${limitMs} ms time limit, but it came back after ${Math.round(roundTripMs)} ms`)
  }
}

/** The module's own failure, as the accepted receipts report it: the error a job rejects with, carrying the receipt and what the module left. */
export function moduleFailure (verified: VerifiedReceipt, output: Uint8Array, mounts: MountTree[]): WasmeshError {
  const { receipt } = verified
  const error = receipt.error != null
    ? errorFromWire(receipt.error)
    : new NonZeroExitError(`the module exited with code ${receipt.exitCode}${receipt.stderr.byteLength > 0 ? `: ${bytesToString(receipt.stderr).trim().split('\n').at(-1) ?? ''}` : ''}`)
  error.receipt = receipt
  error.signed = verified.signed
  error.output = output
  error.mounts = mounts
  return error
}

export function resultOf (job: EncodedJob, receipts: VerifiedReceipt[], output: Uint8Array, mounts: MountTree[], durationMs: number, resumed: boolean): RunResult {
  const receipt = (receipts[0] as VerifiedReceipt).receipt
  return { job: job.cid, output, text: () => bytesToString(output), mounts, receipt, receipts, worker: receipt.worker, durationMs, resumed }
}
