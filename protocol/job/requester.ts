import { TypedEventEmitter } from 'main-event'
import { toString as bytesToString } from 'uint8arrays/to-string'
import { DEADLINE_GRACE_MS, MAX_ATTEMPTS, WORKER_WAIT_MS, ADVERT_SETTLE_MS } from '../constants.ts'
import { DeadlineError, errorFromWire, JobFailedError, NoWorkersError, NonZeroExitError, WasmeshError, WorkerBusyError, WorkerLostError } from '../errors.ts'
import { checkOutput, encodeSignedReceipt, receiptSucceeded, verifyReceipt, type Receipt, type VerifiedReceipt } from '../wire/receipt.ts'
import type { CapacityService } from '../net/capacity.ts'
import type { ContentStore } from '../store/content.ts'
import type { JobClient } from '../net/job-client.ts'
import type { EncodedJob } from '../wire/job.ts'
import type { Reputation } from './reputation.ts'
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
  /** The receipt of the worker whose output was accepted first. */
  receipt: Receipt
  /** Every verified receipt that agreed with the accepted output. */
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
  'job:running': CustomEvent<JobEvent>
  'job:retry': CustomEvent<JobEvent>
  'job:done': CustomEvent<JobEvent>
  'job:failed': CustomEvent<JobEvent>
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
}

export interface RequesterInit {
  /** Workers tried per replica before it is given up. @default MAX_ATTEMPTS */
  maxAttempts?: number
  /** How long to wait for a worker to advertise. @default WORKER_WAIT_MS */
  workerWaitMs?: number
  /** Time allowed beyond a job's own limit. @default DEADLINE_GRACE_MS */
  deadlineGraceMs?: number
  /**
   * Re-run a sample of single-worker jobs on a second worker, more often for
   * workers with little record, and compare. @default true
   */
  spotCheck?: boolean
}

export interface ExecuteOptions {
  signal: AbortSignal
  /** Take the result from the result store if this job was accepted before, and store new results. */
  resume: boolean
}

/** A verified result of one worker. */
interface ReplicaResult {
  verified: VerifiedReceipt
  output: Uint8Array
}

/**
 * Gets jobs run on the network and accepts only verified results: picks
 * workers, sends each job to `redundancy` distinct workers, replaces workers
 * that are busy, lost, late or whose receipts do not verify, and accepts the
 * outcome a majority agrees on. Workers whose signed output disagreed with the
 * accepted one are banned, their receipts kept as evidence.
 */
export class Requester extends TypedEventEmitter<RequesterEvents> {
  private readonly components: RequesterComponents
  private readonly init: RequesterInit
  private readonly selfId: string
  private readonly wakers = new Set<() => void>()
  /** Jobs running with `resume`, by CID. */
  private readonly running = new Map<string, Promise<RunResult>>()
  private firstAdvertAt?: number

  constructor (components: RequesterComponents, init: RequesterInit = {}) {
    super()
    this.components = components
    this.init = init
    this.selfId = components.peerId.toString()
  }

  start (): void {
    this.components.capacity.addEventListener('change', this.onCapacityChange)
  }

  stop (): void {
    this.components.capacity.removeEventListener('change', this.onCapacityChange)
  }

  private readonly onCapacityChange = (): void => {
    this.wake()
  }

  private emit (type: JobEventType, detail: JobEvent): void {
    try {
      this.dispatchEvent(new CustomEvent(type, { detail }))
    } catch {
      // a listener threw: that is the app's bug, and must not break the job pipeline
    }
  }

  /** Something changed that may let a waiting job go: adverts, or a job answered. */
  wake (): void {
    // runs after every job: look at the table only until the first advert came
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
    const { signal } = options
    const { results, reputation } = this.components
    const started = performance.now()
    const jobId = job.cid.toString()
    if (options.resume) {
      const stored = await results.get(job.cid, signal)
      if (stored != null) {
        this.emit('job:done', { job: jobId, worker: stored.receipts[0]?.receipt.worker, durationMs: 0 })
        return resultOf(job, stored.receipts, stored.output, 0, true)
      }
    }
    this.emit('job:queued', { job: jobId })
    const redundancy = job.spec.redundancy
    let quorum = Math.floor(redundancy / 2) + 1
    const maxReplicas = redundancy * 2 + 1
    let spotChecked = this.init.spotCheck === false || redundancy > 1
    const controller = new AbortController()
    const replicaSignal = AbortSignal.any([signal, controller.signal])
    const tried = new Set<string>()
    const errors: Error[] = []
    const groups = new Map<string, ReplicaResult[]>()
    const running = new Set<Promise<void>>()
    let launched = 0
    const launch = (): void => {
      launched++
      const replica = this.runReplica(job, tried, errors, replicaSignal)
        .then(result => {
          const key = outcomeKey(result.verified.receipt)
          groups.set(key, [...(groups.get(key) ?? []), result])
        }, (err: Error) => { errors.push(err) })
        .finally(() => { running.delete(replica) })
      running.add(replica)
    }
    try {
      for (let i = 0; i < redundancy; i++) {
        launch()
      }
      while (true) {
        await Promise.race(running)
        signal.throwIfAborted()
        const accepted = [...groups.values()].find(group => group.length >= quorum)
        if (accepted != null) {
          const first = accepted[0] as ReplicaResult
          if (!spotChecked) {
            spotChecked = true
            if (receiptSucceeded(first.verified.receipt) && this.anotherWorker(job, tried) && Math.random() < reputation.spotCheckRate(first.verified.receipt.worker)) {
              quorum = 2
              launch()
              continue
            }
          }
          return await this.accept(job, accepted, groups, started, options)
        }
        if (running.size > 0) {
          continue
        }
        const best = Math.max(0, ...[...groups.values()].map(group => group.length))
        if (groups.size > 1 && launched < maxReplicas) {
          // workers disagree: more runs decide
          for (let i = 0; i < quorum - best && launched < maxReplicas; i++) {
            launch()
          }
          continue
        }
        if (quorum === 2 && redundancy === 1 && groups.size === 1) {
          // the spot check found no second worker: the check is best-effort, the result stands
          return await this.accept(job, [...groups.values()][0] as ReplicaResult[], groups, started, options)
        }
        const reason = groups.size > 1
          ? `${launched} workers disagreed on the output and no ${quorum} of them agreed`
          : best > 0
            ? `only ${best} of the ${quorum} agreeing results it needs could be obtained`
            : `no worker could run it (${errors.length} attempt${errors.length === 1 ? '' : 's'} failed)`
        throw new JobFailedError(`job ${jobId} failed: ${reason}${errors.length > 0 ? `; last error: ${errors.at(-1)?.message}` : ''}`, errors)
      }
    } catch (err) {
      this.emit('job:failed', { job: jobId, error: err as Error })
      throw err
    } finally {
      controller.abort()
    }
  }

  private async accept (job: EncodedJob, group: ReplicaResult[], groups: Map<string, ReplicaResult[]>, started: number, options: ExecuteOptions): Promise<RunResult> {
    const { results } = this.components
    const first = group[0] as ReplicaResult
    const { receipt } = first.verified
    const durationMs = performance.now() - started
    const jobId = job.cid.toString()
    await this.convictDissenters(job, group, groups)
    if (!receiptSucceeded(receipt)) {
      const error = receipt.error != null
        ? errorFromWire(receipt.error)
        : new NonZeroExitError(`the module exited with code ${receipt.exitCode}${receipt.stderr.byteLength > 0 ? `: ${bytesToString(receipt.stderr).trim().split('\n').at(-1) ?? ''}` : ''}`)
      error.receipt = receipt
      error.output = first.output
      this.emit('job:failed', { job: jobId, worker: receipt.worker, error, durationMs })
      throw error
    }
    const receipts = group.map(result => result.verified)
    if (options.resume) {
      await results.put(job.cid, { receipts, output: first.output }, options.signal)
    }
    this.emit('job:done', { job: jobId, worker: receipt.worker, durationMs })
    return resultOf(job, receipts, first.output, durationMs, false)
  }

  /**
   * Workers that ran the job to completion but returned another output than
   * the accepted one lied or are broken: either way their results cannot be
   * trusted. Runs that stopped at a limit are not convicted: a slower worker
   * can time out where a faster one finished.
   */
  private async convictDissenters (job: EncodedJob, accepted: ReplicaResult[], groups: Map<string, ReplicaResult[]>): Promise<void> {
    const acceptedReceipt = (accepted[0] as ReplicaResult).verified.receipt
    if (accepted.length < 2 || acceptedReceipt.error != null) {
      return
    }
    for (const group of groups.values()) {
      if (group === accepted) {
        continue
      }
      for (const dissent of group) {
        const { receipt, signed } = dissent.verified
        if (receipt.error != null) {
          continue
        }
        await this.components.reputation.convict({
          job: job.cid.toString(),
          worker: receipt.worker,
          acceptedHash: bytesToString(acceptedReceipt.outputHash, 'base64'),
          receipt: encodeSignedReceipt(signed),
          at: Date.now()
        })
      }
    }
  }

  /** Runs the job on one worker, moving to another when a worker is busy, lost, late, or sends a receipt that does not verify. */
  private async runReplica (job: EncodedJob, tried: Set<string>, errors: Error[], signal: AbortSignal): Promise<ReplicaResult> {
    const maxAttempts = this.init.maxAttempts ?? MAX_ATTEMPTS
    let attempts = 0
    let busyWaits = 0
    while (true) {
      const worker = await this.pickWorker(job, tried, signal)
      tried.add(worker)
      try {
        return await this.runOn(worker, job, signal)
      } catch (err) {
        signal.throwIfAborted()
        const error = err as Error
        if (error instanceof WorkerBusyError) {
          // not the worker's fault: let it finish what it has and ask again
          tried.delete(worker)
          await sleep(Math.min(1000, 20 * 2 ** Math.min(busyWaits++, 6)), signal)
          continue
        }
        if (error instanceof WasmeshError && !error.retryable && error.name !== 'InvalidReceiptError') {
          throw error
        }
        this.components.reputation.failed(worker, error instanceof DeadlineError ? 'timeout' : 'failure')
        errors.push(new WorkerLostError(`${worker}: ${error.message}`, { cause: error }))
        this.emit('job:retry', { job: job.cid.toString(), worker, error })
        if (++attempts >= maxAttempts) {
          throw new JobFailedError(`job ${job.cid.toString()} failed on ${attempts} workers; last error: ${error.message}`, [...errors])
        }
        await sleep(50 * 2 ** (attempts - 1), signal)
      }
    }
  }

  /** Sends the job to a worker `pickWorker` reserved, and verifies what comes back. */
  private async runOn (worker: string, job: EncodedJob, signal: AbortSignal): Promise<ReplicaResult> {
    const { client, content, scheduler, reputation } = this.components
    const deadlineMs = job.spec.limits.timeoutMs + (this.init.deadlineGraceMs ?? DEADLINE_GRACE_MS)
    const deadline = AbortSignal.timeout(deadlineMs)
    const started = performance.now()
    let signed
    try {
      signed = await client.submit(worker, job, {
        signal: AbortSignal.any([signal, deadline]),
        onAccepted: () => { this.emit('job:running', { job: job.cid.toString(), worker }) }
      })
    } catch (err) {
      if (deadline.aborted && !signal.aborted) {
        throw new DeadlineError(`${worker} did not answer within the job's deadline of ${deadlineMs} ms`)
      }
      throw err
    } finally {
      scheduler.end(worker)
      this.wake()
    }
    const verified = await verifyReceipt(signed, { job: job.cid, worker })
    const { receipt } = verified
    let output: Uint8Array
    if (receipt.output instanceof Uint8Array) {
      output = receipt.output
    } else {
      output = await content.get(receipt.output, { signal, maxBytes: job.spec.limits.outputBytes, what: 'output' })
      await checkOutput(receipt, output)
    }
    reputation.succeeded(worker, performance.now() - started - receipt.stats.execMs)
    return { verified, output }
  }

  /**
   * The best worker for the job that this job has not tried yet, with a slot
   * reserved there (`runOn` releases it). Waits while
   * every capable worker is saturated by our own jobs (that is backpressure,
   * not failure); gives up with NoWorkersError when no capable worker is
   * known for `workerWaitMs`.
   */
  private async pickWorker (job: EncodedJob, tried: ReadonlySet<string>, signal: AbortSignal): Promise<string> {
    const { capacity, scheduler } = this.components
    const { selfId } = this
    const waitMs = this.init.workerWaitMs ?? WORKER_WAIT_MS
    const giveUpAt = Date.now() + waitMs
    while (true) {
      signal.throwIfAborted()
      const peers = capacity.peers().filter(p => p.peerId !== selfId)
      const best = scheduler.rank(job, peers, tried)[0]
      const settling = this.firstAdvertAt == null || Date.now() - this.firstAdvertAt < ADVERT_SETTLE_MS
      if (best != null && (!settling || best.advert.cached.some(cid => cid.equals(job.spec.module)))) {
        // reserve before yielding: every waiting job wakes at once, and each must see the others' picks
        scheduler.begin(best.peerId)
        return best.peerId
      }
      if (best != null) {
        // just joined: adverts are still arriving, and one may come from a worker that has the module
        await this.waitForChange(ADVERT_SETTLE_MS - (Date.now() - (this.firstAdvertAt ?? Date.now())), signal)
        continue
      }
      const busyForUs = peers.some(p => !tried.has(p.peerId) && scheduler.inFlightTo(p.peerId) > 0)
      if (!busyForUs && Date.now() >= giveUpAt) {
        throw new NoWorkersError(peers.length === 0
          ? `no worker advertised capacity within ${waitMs} ms: start one with \`wasmesh peer\`, or open the page and switch on Contribute`
          : `none of the ${peers.length} known workers can take this job now (all tried, banned, full, or unable to give ${job.spec.limits.memoryBytes} bytes of memory)`)
      }
      await this.waitForChange(busyForUs ? 1000 : Math.max(1, giveUpAt - Date.now()), signal)
    }
  }

  /** Whether some capable worker this job has not tried is known, busy or not: a spot check needs one. */
  private anotherWorker (job: EncodedJob, tried: ReadonlySet<string>): boolean {
    const { capacity, scheduler } = this.components
    const { selfId } = this
    return scheduler.eligible(job, capacity.peers().filter(p => p.peerId !== selfId), tried).length > 0
  }

  private async waitForChange (timeoutMs: number, signal: AbortSignal): Promise<void> {
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        this.wakers.delete(done)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, Math.max(1, timeoutMs))
      this.wakers.add(done)
      signal.addEventListener('abort', done)
    })
  }
}

function resultOf (job: EncodedJob, receipts: VerifiedReceipt[], output: Uint8Array, durationMs: number, resumed: boolean): RunResult {
  const receipt = (receipts[0] as VerifiedReceipt).receipt
  return { job: job.cid, output, text: () => bytesToString(output), receipt, receipts, worker: receipt.worker, durationMs, resumed }
}

/** Receipts agree when they report the same output, exit code and failure. */
function outcomeKey (receipt: Receipt): string {
  return `${bytesToString(receipt.outputHash, 'base64')}:${receipt.exitCode}:${receipt.error?.name ?? ''}`
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

export function requester (init: RequesterInit = {}): (components: RequesterComponents) => Requester {
  return components => new Requester(components, init)
}
