import { lpStream } from '@libp2p/utils'
import { contentHash } from '../wire/cbor.ts'
import { ACCEPTED_NOTICE_MS, OUTPUT_TTL_MS, HEARTBEAT_INTERVAL_MS, JOB_PROTOCOL, MAX_CREDIT_WINDOW, MAX_INLINE_BYTES, MAX_JOB_STREAMS_PER_CONNECTION, MAX_MALFORMED_FRAMES, MAX_MESSAGE_BYTES, MAX_MISBEHAVIOUR, MAX_PIPELINED_REQUESTS, MAX_QUEUED_ANSWERS, MAX_QUEUED_JOB_BYTES, MAX_QUEUED_JOBS, MAX_REMEMBERED_MISBEHAVERS, MISBEHAVIOUR_WINDOW_MS, QUEUE_TARGET_MS } from '../constants.ts'
import { FrameWriter } from '../net/frame-writer.ts'
import { CancelledError, errorToWire, MalformedMessageError, WorkerLostError } from '../errors.ts'
import { decodeJob, type EncodedJob } from '../wire/job.ts'
import { decodeRequest, encodeMessage, type ChunkResult, type JobResponse } from '../wire/messages.ts'
import { encodeSignedReceipt, MAX_STDERR_BYTES, signReceipts, type Receipt, type SignedReceipt, type Signer } from '../wire/receipt.ts'
import { ReceiptBatcher } from './receipt-batcher.ts'
import { RecentAverages } from '../recent-averages.ts'
import { executeJob } from './execute-job.ts'
import type { TestFault } from './test-faults.ts'
import type { ContentStore } from '../store/content.ts'
import type { Executor } from '../runtime/executor.ts'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** Jobs of a module measured shorter than this go to the executor ahead of a free slot, to share a hop to a thread (see dispatch). */
const AHEAD_JOB_MS = 10
const MAX_MEASURED_MODULES = 64


export interface JobServerComponents {
  registrar: Pick<Libp2p, 'handle' | 'unhandle'>
  /** Signs receipts with the peer's key. */
  signer: Signer
  peerId: PeerId
  executor: Executor
  content: ContentStore
}

export interface JobServerInit {
  /** Jobs run at once; further submissions are answered `busy`. */
  slots: number
  fault?: TestFault
}

/** Detail of the `job:start` and `job:end` events. */
export interface ServedJob {
  job: string
  requester: string
  /** On `job:end`: the signed receipt sent back (a failure's too); absent when the job ended without one (cancelled, content unreachable). */
  signed?: SignedReceipt
}

/** A job (or a chunk of jobs) admitted on a stream, waiting for a slot or running in one. */
interface Admitted {
  id: number
  /** The job; a chunk's first job. */
  job: EncodedJob
  /** A chunk's jobs, run as one unit and answered together. */
  chunk?: EncodedJob[]
  /** Jobs it holds: what it counts against the credit window and the queue bound. */
  weight: number
  /** Bytes of its encoded specs: what it costs us while queued. */
  bytes: number
  controller: AbortController
  link: Link
  /** When it was taken (its queue time starts). */
  admittedAt: number
  acceptedNotice: ReturnType<typeof setTimeout>
}

/** One inbound job stream: who is on it, how to answer, and its jobs not yet answered. */
interface Link {
  requester: string
  writer: FrameWriter
  jobs: Map<number, Admitted>
  /** The credit window last told to this stream. */
  window?: number
  /**
   * What we still honour: a window we shrink binds only once the requester
   * has fewer jobs here than the new one, since it may have sent jobs under
   * the old one before it heard of the new.
   */
  allowance: number
}

/**
 * The worker side of the job protocol. Each inbound stream carries pipelined
 * requests. The worker grants each requester a credit window (running and
 * queued jobs it may have outstanding), sized from the measured job time so
 * the pipe never drains between tiny jobs while long ones do not queue at
 * all; a submission beyond it is answered `busy`. Free slots go round-robin
 * to the requesters with queued jobs, so nobody's deep queue starves
 * another's.
 *
 * Emits `job:start`, `job:end` (CustomEvent<ServedJob>) and `slots` when the
 * number of free slots changes.
 */
export class JobServer extends EventTarget {
  private readonly components: JobServerComponents
  private readonly slots: number
  private readonly fault?: TestFault
  private readonly running = new Set<Admitted>()
  /** Jobs waiting for a slot, per requester; the map's order is the round-robin turn. */
  private readonly queues = new Map<string, Admitted[]>()
  /** Jobs waiting per requester, a chunk counted as its jobs. */
  private readonly queuedWeight = new Map<string, number>()
  private queuedJobs = 0
  private queuedBytes = 0
  /** Jobs each requester has running now, a chunk counted as its jobs. */
  private readonly held = new Map<string, number>()
  /** How long a job holds a slot here, start to receipt (smoothed); unknown until one ran. */
  private jobMs?: number
  /** The same per module, for the modules run lately: which jobs are tiny enough to hand the executor ahead of a slot. */
  private readonly moduleMs = new RecentAverages(MAX_MEASURED_MODULES, 0.5)
  /** Large outputs kept for their requesters to fetch, until when. */
  private readonly outputs = new Map<string, { cid: CID, expiresAt: number }>()
  private sweeper?: ReturnType<typeof setInterval>
  /** Peers whose job streams were reset for garbage: how many times, since when. */
  private readonly misbehaviour = new Map<string, { count: number, since: number }>()
  private readonly receipts: ReceiptBatcher

  constructor (components: JobServerComponents, init: JobServerInit) {
    super()
    this.components = components
    // more receipts are coming while jobs run or wait: their receipts may share a signature
    this.receipts = new ReceiptBatcher(components.signer, () => ({ running: this.running.size, queued: this.queuedJobs }))
    this.slots = init.slots
    this.fault = init.fault
  }

  get freeSlots (): number {
    return Math.max(0, this.slots - this.running.size)
  }

  get totalSlots (): number {
    return this.slots
  }

  async start (): Promise<void> {
    await this.components.registrar.handle(JOB_PROTOCOL, (stream, connection) => {
      void this.serve(stream, connection.remotePeer.toString())
    }, {
      maxInboundStreams: MAX_JOB_STREAMS_PER_CONNECTION,
      maxOutboundStreams: 1
    })
  }

  async stop (): Promise<void> {
    await this.components.registrar.unhandle(JOB_PROTOCOL)
    for (const queue of this.queues.values()) {
      for (const admitted of queue) {
        clearTimeout(admitted.acceptedNotice)
      }
    }
    this.queues.clear()
    this.queuedWeight.clear()
    this.queuedJobs = 0
    this.queuedBytes = 0
    for (const admitted of this.running) {
      // retryable: the job is fine, this worker is going away
      admitted.controller.abort(new WorkerLostError('the worker is shutting down'))
    }
    await this.sweepOutputs(true)
  }

  private async serve (stream: Stream, requester: string): Promise<void> {
    if (this.misbehaved(requester)) {
      stream.abort(new MalformedMessageError('too many malformed job streams from this peer lately'))
      return
    }
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    // a failed write means the requester went away; the read loop below sees the stream end and cleans up
    const link: Link = { requester, writer: new FrameWriter(lp, () => {}), jobs: new Map(), allowance: 0 }
    let malformed = 0
    this.grantCredit(link)
    // a stalled worker (the test fault) is one that fell silent: no heartbeat either
    const heartbeat = setInterval(() => {
      if (link.jobs.size > 0 && this.fault !== 'stall') {
        this.send(link, { type: 'alive', id: 0 })
      }
    }, HEARTBEAT_INTERVAL_MS)
    try {
      while (true) {
        // backpressure: stop reading while answers wait to be written, so a peer that never reads cannot grow our memory
        if (link.writer.backlog > MAX_QUEUED_ANSWERS) {
          await link.writer.drained()
        }
        const request = await lp.read()
        let message
        try {
          message = decodeRequest(request.subarray())
        } catch (err) {
          if (++malformed > MAX_MALFORMED_FRAMES) {
            this.recordMisbehaviour(requester)
            throw err // a stream of garbage is not worth answering frame by frame: reset it
          }
          this.send(link, { type: 'error', id: 0, error: errorToWire(err) })
          continue
        }
        if (message.type === 'cancel') {
          this.cancel(link, message.id)
          continue
        }
        if (message.type === 'submitChunk') {
          await this.admit(link, message.id, message.jobs, true)
          this.dispatch()
          continue
        }
        // a batch is taken job by job, exactly as if each had come alone: each is answered, each counts against the credit
        for (const { id, job } of message.type === 'submit' ? [message] : message.jobs) {
          await this.admit(link, id, [job], false)
          this.dispatch()
        }
      }
    } catch {
      // end of stream, reset, or a frame over the size limit: nothing more will come
    } finally {
      clearInterval(heartbeat)
      // with the requester gone, nobody can use the results
      for (const id of [...link.jobs.keys()]) {
        this.cancel(link, id, new CancelledError('the requester closed the stream'))
      }
      stream.abort(new MalformedMessageError('job stream closed'))
    }
  }

  /**
   * Queues a submitted job, or a chunk of them, or answers why not (`busy`
   * beyond the credit or the queue bounds, `error` when one does not
   * decode: a chunk is taken whole or not at all).
   */
  private async admit (link: Link, id: number, encoded: Uint8Array[], chunk: boolean): Promise<void> {
    const bytes = encoded.reduce((sum, job) => sum + job.byteLength, 0)
    if (!this.hasRoomFor(link, bytes, encoded.length)) {
      this.send(link, { type: 'busy', id })
      return
    }
    let jobs: EncodedJob[]
    try {
      jobs = await Promise.all(encoded.map(decodeJob))
    } catch (err) {
      this.send(link, { type: 'error', id, error: errorToWire(err) })
      return
    }
    const admitted: Admitted = {
      id,
      job: jobs[0] as EncodedJob,
      ...(chunk ? { chunk: jobs } : {}),
      weight: jobs.length,
      bytes,
      controller: new AbortController(),
      link,
      admittedAt: performance.now(),
      // a fast job's receipt says all that `accepted` would: announce only jobs still waiting or running after a moment
      acceptedNotice: setTimeout(() => { this.send(link, { type: 'accepted', id }) }, ACCEPTED_NOTICE_MS)
    }
    link.jobs.set(id, admitted)
    this.enqueue(admitted)
  }

  private send (link: Link, response: JobResponse): void {
    link.writer.write(encodeMessage(response))
  }

  /** Whether a requester may have `jobs` more outstanding here: within its credit, and within our queue bounds. */
  private hasRoomFor (link: Link, bytes: number, jobs: number): boolean {
    const outstanding = this.outstanding(link.requester)
    if (outstanding < (link.window ?? 0)) {
      link.allowance = link.window as number
    }
    if (link.jobs.size >= MAX_PIPELINED_REQUESTS || outstanding + jobs > Math.max(link.allowance, this.windowFor(link.requester))) {
      return false
    }
    const queues = this.running.size >= this.slots
    return !queues || (this.queuedJobs + jobs <= MAX_QUEUED_JOBS && this.queuedBytes + bytes <= MAX_QUEUED_JOB_BYTES)
  }

  /** Jobs a requester has here, running and queued (a chunk counts its jobs). */
  private outstanding (requester: string): number {
    return (this.held.get(requester) ?? 0) + (this.queuedWeight.get(requester) ?? 0)
  }

  /**
   * The jobs a requester may have outstanding here: our slots plus a queue
   * of QUEUE_TARGET_MS of work per slot (one job per slot when jobs take
   * longer), shared equally by the requesters with jobs here (the asker
   * included). At least one, so every requester gets its turn.
   */
  private windowFor (requester: string): number {
    // rounded down to a power of two, so jitter in the measured time does not change the window at every job
    const perSlot = this.jobMs == null || this.jobMs > QUEUE_TARGET_MS ? 1 : 2 ** Math.floor(Math.log2(QUEUE_TARGET_MS / Math.max(this.jobMs, 0.01)))
    const depth = this.slots + Math.min(MAX_QUEUED_JOBS, this.slots * perSlot)
    const active = new Set([...this.held.keys(), ...this.queues.keys(), requester]).size
    return Math.max(1, Math.min(MAX_CREDIT_WINDOW, Math.floor(depth / active)))
  }

  /** Tells the stream its window when it changed since we last did. */
  private grantCredit (link: Link): void {
    const window = this.windowFor(link.requester)
    if (window !== link.window) {
      link.window = window
      link.allowance = Math.max(link.allowance, window)
      this.send(link, { type: 'credit', id: 0, window })
    }
  }

  private enqueue (admitted: Admitted): void {
    const { requester } = admitted.link
    const queue = this.queues.get(requester)
    if (queue == null) {
      this.queues.set(requester, [admitted])
    } else {
      queue.push(admitted)
    }
    this.countQueued(admitted, 1)
  }

  /** Counts a job (or a chunk's jobs) joining the queue (+1) or leaving it (-1). */
  private countQueued (admitted: Admitted, change: 1 | -1): void {
    const { requester } = admitted.link
    const weight = (this.queuedWeight.get(requester) ?? 0) + change * admitted.weight
    if (weight > 0) {
      this.queuedWeight.set(requester, weight)
    } else {
      this.queuedWeight.delete(requester)
    }
    this.queuedJobs += change * admitted.weight
    this.queuedBytes += change * admitted.bytes
  }

  /**
   * Starts queued jobs while slots are free, one requester at a time in
   * turn. With every slot taken, a job whose module we measured to take
   * less than AHEAD_JOB_MS still goes to the executor, up to its thread batch
   * per slot: queued jobs of one module then reach a thread together (one hop
   * for several jobs) rather than one by one. Other jobs wait here, so a long
   * job never waits in the executor behind others.
   */
  private dispatch (): void {
    const batch = this.components.executor.threadBatch ?? 1
    const depth = this.slots * (1 + (batch > 1 ? batch : 0))
    while (this.queues.size > 0 && this.running.size < depth) {
      const [requester, queue] = this.queues.entries().next().value as [string, Admitted[]]
      const next = queue[0] as Admitted
      // a chunk keeps its own jobs flowing to the executor: it never goes ahead of a slot
      if (this.running.size >= this.slots && (next.chunk != null || !this.tiny(next.job))) {
        return
      }
      queue.shift()
      this.queues.delete(requester)
      if (queue.length > 0) {
        this.queues.set(requester, queue) // to the back of the turn
      }
      this.countQueued(next, -1)
      this.begin(next)
    }
  }

  /** Whether jobs of this module took under AHEAD_JOB_MS here lately. */
  private tiny (job: EncodedJob): boolean {
    return (this.moduleMs.get(job.spec.module.toString()) ?? Infinity) < AHEAD_JOB_MS
  }

  private begin (admitted: Admitted): void {
    const { link } = admitted
    this.running.add(admitted)
    this.held.set(link.requester, (this.held.get(link.requester) ?? 0) + admitted.weight)
    this.dispatchEvent(new Event('slots'))
    for (const job of admitted.chunk ?? [admitted.job]) {
      this.dispatchEvent(new CustomEvent<ServedJob>('job:start', { detail: { job: job.cid.toString(), requester: link.requester } }))
    }
    void (admitted.chunk != null ? this.serveChunk(admitted, admitted.chunk) : this.serveJob(admitted))
  }

  /** Runs an admitted job, frees its slot, then signs (in a batch, when busy) and answers. */
  private async serveJob (admitted: Admitted): Promise<void> {
    const { job, link, controller, id, admittedAt } = admitted
    const startedAt = performance.now()
    let outcome: { receipt: Receipt } | { error: unknown }
    let waitMs = 0
    try {
      const ran = await this.runJob(job, controller.signal, startedAt - admittedAt)
      waitMs = ran.waitMs
      outcome = { receipt: ran.receipt }
    } catch (error) {
      outcome = { error }
    }
    // what the job cost a slot: not the time it waited in the executor for a thread
    this.measure(job, performance.now() - startedAt - waitMs)
    // free the slot and start the next job before signing and answering: the slot need not wait for either
    this.end(admitted)
    this.dispatch()
    let response: JobResponse
    let signed: SignedReceipt | undefined
    try {
      if ('error' in outcome) {
        throw outcome.error
      }
      signed = await this.receipts.sign(outcome.receipt)
      response = { type: 'receipt', id, receipt: encodeSignedReceipt(signed) }
    } catch (err) {
      response = { type: 'error', id, error: errorToWire(err) }
    }
    this.answer(admitted, response)
    this.dispatchEvent(new CustomEvent<ServedJob>('job:end', { detail: { job: job.cid.toString(), requester: link.requester, ...(signed != null ? { signed } : {}) } }))
  }

  /**
   * Runs a chunk's jobs, frees its slot, signs every receipt under one root
   * and answers once. A job that could not run has an error in its
   * place; a cancelled chunk is answered with the one error.
   */
  private async serveChunk (admitted: Admitted, jobs: EncodedJob[]): Promise<void> {
    const { link, controller, id, admittedAt } = admitted
    const startedAt = performance.now()
    // all at once: the executor queues them and hands a thread a batch of them per post
    const outcomes = await Promise.all(jobs.map(async (job): Promise<Receipt | Error> => {
      try {
        return (await this.runJob(job, controller.signal, startedAt - admittedAt)).receipt
      } catch (err) {
        return err as Error
      }
    }))
    this.measure(admitted.job, (performance.now() - startedAt) / jobs.length)
    this.end(admitted)
    this.dispatch()
    let response: JobResponse
    const signed: Array<SignedReceipt | undefined> = []
    try {
      controller.signal.throwIfAborted()
      const receipts = outcomes.filter((outcome): outcome is Receipt => !(outcome instanceof Error))
      const signatures = receipts.length > 0 ? await signReceipts(receipts, this.components.signer) : []
      let j = 0
      const results = outcomes.map((outcome): ChunkResult => {
        if (outcome instanceof Error) {
          signed.push(undefined)
          return { error: errorToWire(outcome) }
        }
        const receipt = signatures[j++] as SignedReceipt
        signed.push(receipt)
        return { receipt: encodeSignedReceipt(receipt) }
      })
      response = { type: 'chunk', id, results }
    } catch (err) {
      response = { type: 'error', id, error: errorToWire(err) }
    }
    this.answer(admitted, response)
    jobs.forEach((job, i) => {
      const receipt = signed[i]
      this.dispatchEvent(new CustomEvent<ServedJob>('job:end', { detail: { job: job.cid.toString(), requester: link.requester, ...(receipt != null ? { signed: receipt } : {}) } }))
    })
  }

  /** Sends a job's (or chunk's) one answer, unless it was answered already (cancelled while queued, or its stream closed). */
  private answer (admitted: Admitted, response: JobResponse): void {
    clearTimeout(admitted.acceptedNotice)
    if (admitted.link.jobs.delete(admitted.id)) {
      // a changed window goes first: the requester places its next jobs as soon as it reads the answer
      this.grantCredit(admitted.link)
      this.send(admitted.link, response)
    }
  }

  /** Records how long a job of this module held a slot: the credit window and the jobs handed ahead follow it. */
  private measure (job: EncodedJob, tookMs: number): void {
    this.jobMs = this.jobMs == null ? tookMs : this.jobMs * 0.9 + tookMs * 0.1
    this.moduleMs.add(job.spec.module.toString(), tookMs)
  }

  private end (admitted: Admitted): void {
    this.running.delete(admitted)
    const { requester } = admitted.link
    const held = (this.held.get(requester) ?? admitted.weight) - admitted.weight
    if (held > 0) {
      this.held.set(requester, held)
    } else {
      this.held.delete(requester)
    }
    this.dispatchEvent(new Event('slots'))
  }

  /**
   * Drops a job the requester no longer wants: a queued one leaves the queue
   * and is answered at once, a running one is stopped and answered when it
   * has stopped. Every submission gets exactly one answer.
   */
  private cancel (link: Link, id: number, reason: Error = new CancelledError('cancelled by the requester')): void {
    const admitted = link.jobs.get(id)
    if (admitted == null) {
      return
    }
    const queue = this.queues.get(link.requester)
    const index = queue?.indexOf(admitted) ?? -1
    if (queue == null || index < 0) {
      admitted.controller.abort(reason)
      return
    }
    queue.splice(index, 1)
    if (queue.length === 0) {
      this.queues.delete(link.requester)
    }
    this.countQueued(admitted, -1)
    clearTimeout(admitted.acceptedNotice)
    link.jobs.delete(id)
    this.send(link, { type: 'error', id, error: errorToWire(reason) })
  }

  /**
   * A large output, or a writable mount's final tree, goes by CID: we keep
   * its blocks for OUTPUT_TTL_MS, long enough for the requester (and a
   * checker) to fetch them, then delete them, so outputs do not fill the
   * worker's disk.
   */
  private keepForFetching (cid: CID): CID {
    this.outputs.set(cid.toString(), { cid, expiresAt: Date.now() + OUTPUT_TTL_MS })
    this.sweeper ??= setInterval(() => { void this.sweepOutputs(false) }, OUTPUT_TTL_MS / 3)
    return cid
  }

  private async sweepOutputs (all: boolean): Promise<void> {
    const now = Date.now()
    for (const [key, { cid, expiresAt }] of this.outputs) {
      if (all || expiresAt <= now) {
        this.outputs.delete(key)
        await this.components.content.remove(cid).catch(() => {})
      }
    }
    if (this.outputs.size === 0) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }

  /** Whether a peer reset so many job streams with garbage lately that its new ones are refused at once. */
  private misbehaved (requester: string): boolean {
    const record = this.misbehaviour.get(requester)
    if (record != null && Date.now() - record.since > MISBEHAVIOUR_WINDOW_MS) {
      this.misbehaviour.delete(requester)
      return false
    }
    return (record?.count ?? 0) >= MAX_MISBEHAVIOUR
  }

  private recordMisbehaviour (requester: string): void {
    const record = this.misbehaviour.get(requester)
    if (record == null && this.misbehaviour.size >= MAX_REMEMBERED_MISBEHAVERS) {
      this.misbehaviour.delete(this.misbehaviour.keys().next().value as string)
    }
    this.misbehaviour.set(requester, { count: (record?.count ?? 0) + 1, since: record?.since ?? Date.now() })
  }

  /** Fetches what the job needs and runs it: the receipt to sign, and how long it waited in the executor for a thread. */
  private async runJob (job: EncodedJob, signal: AbortSignal, queueMs: number): Promise<{ receipt: Receipt, waitMs: number }> {
    const { content, executor, peerId } = this.components
    if (this.fault === 'stall') {
      await new Promise((_resolve, reject) => signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true }))
    }
    const run = await executeJob(job, { content, executor }, signal)
    const output = run.output
    const receipt: Receipt = {
      v: 1,
      job: job.cid,
      worker: peerId.toString(),
      exitCode: run.exitCode,
      output: output.byteLength <= MAX_INLINE_BYTES ? output : this.keepForFetching(await content.add(output, signal)),
      outputHash: await contentHash(output),
      outputSize: output.byteLength,
      ...(run.mounts != null ? { mounts: run.mounts.map(mount => ({ path: mount.path, cid: this.keepForFetching(mount.cid) })) } : {}),
      stderr: run.stderr.subarray(Math.max(0, run.stderr.byteLength - MAX_STDERR_BYTES)),
      stats: { queueMs: queueMs + run.waitMs, ...run.stats },
      timestamp: Date.now()
    }
    if (run.error != null) {
      receipt.error = run.error
    }
    return { receipt, waitMs: run.waitMs }
  }
}
