import { lpStream } from '@libp2p/utils'
import { contentHash } from '../wire/cbor.ts'
import { ACCEPTED_NOTICE_MS, FAIR_SHARE_WINDOW_MS, OUTPUT_TTL_MS, HEARTBEAT_INTERVAL_MS, JOB_PROTOCOL, MAX_INLINE_BYTES, MAX_JOB_STREAMS_PER_CONNECTION, MAX_MALFORMED_FRAMES, MAX_MESSAGE_BYTES, MAX_MISBEHAVIOUR, MAX_PIPELINED_REQUESTS, MAX_QUEUED_ANSWERS, MAX_WAITING_REQUESTERS, MISBEHAVIOUR_WINDOW_MS } from '../constants.ts'
import { errorToWire, MalformedMessageError, WorkerLostError } from '../errors.ts'
import { decodeJob, type EncodedJob } from '../wire/job.ts'
import { decodeRequest, encodeMessage, type JobResponse } from '../wire/messages.ts'
import { encodeSignedReceipt, signReceipt, MAX_STDERR_BYTES, type Receipt, type SignedReceipt, type Signer } from '../wire/receipt.ts'
import { executeJob } from './execute-job.ts'
import type { TestFault } from './test-faults.ts'
import type { ContentStore } from '../store/content.ts'
import type { Executor } from '../runtime/executor.ts'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'


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
  receipt?: Receipt
  /** On `job:end`: the signed receipt sent back (a failure's too); absent when the job ended without one (cancelled, content unreachable). */
  signed?: SignedReceipt
}

/**
 * The worker side of the job protocol. Each inbound stream carries pipelined
 * requests; each accepted job takes one slot until its receipt is sent. A
 * worker with no free slot answers `busy` rather than queueing: the requester
 * knows other workers, we do not.
 *
 * Emits `job:start`, `job:end` (CustomEvent<ServedJob>) and `slots` when the
 * number of free slots changes.
 */
export class JobServer extends EventTarget {
  private readonly components: JobServerComponents
  private readonly slots: number
  private readonly fault?: TestFault
  private readonly running = new Set<AbortController>()
  /** Requesters turned away and still asking: since when, and when last. */
  private readonly waiting = new Map<string, { since: number, last: number }>()
  /** Slots each requester holds now. */
  private readonly held = new Map<string, number>()
  /** Large outputs kept for their requesters to fetch, until when. */
  private readonly outputs = new Map<string, { cid: CID, expiresAt: number }>()
  private sweeper?: ReturnType<typeof setInterval>
  /** Peers whose job streams were reset for garbage: how many times, since when. */
  private readonly misbehaviour = new Map<string, { count: number, since: number }>()
  private busy = 0

  constructor (components: JobServerComponents, init: JobServerInit) {
    super()
    this.components = components
    this.slots = init.slots
    this.fault = init.fault
  }

  get freeSlots (): number {
    return this.slots - this.busy
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
    for (const controller of this.running) {
      // retryable: the job is fine, this worker is going away
      controller.abort(new WorkerLostError('the worker is shutting down'))
    }
    await this.sweepOutputs(true)
  }

  private async serve (stream: Stream, requester: string): Promise<void> {
    if (this.misbehaved(requester)) {
      stream.abort(new MalformedMessageError('too many malformed job streams from this peer lately'))
      return
    }
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    const inFlight = new Map<number, AbortController>()
    let writes = Promise.resolve()
    let queued = 0
    let malformed = 0
    const send = (response: JobResponse): void => {
      queued++
      writes = writes.then(async () => { await lp.write(encodeMessage(response)) }).catch(() => {
        // the requester went away; the read loop below sees the stream end and cleans up
      }).finally(() => { queued-- })
    }
    // a stalled worker (the test fault) is one that fell silent: no heartbeat either
    const heartbeat = setInterval(() => {
      if (inFlight.size > 0 && this.fault !== 'stall') {
        send({ type: 'alive', id: 0 })
      }
    }, HEARTBEAT_INTERVAL_MS)
    try {
      while (true) {
        // backpressure: stop reading while answers wait to be written, so a peer that never reads cannot grow our memory
        if (queued > MAX_QUEUED_ANSWERS) {
          await writes
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
          send({ type: 'error', id: 0, error: errorToWire(err) })
          continue
        }
        if (message.type === 'cancel') {
          inFlight.get(message.id)?.abort(new Error('cancelled by the requester'))
          continue
        }
        if (!this.admits(requester) || inFlight.size >= MAX_PIPELINED_REQUESTS) {
          send({ type: 'busy', id: message.id, ahead: this.turnAway(requester) })
          continue
        }
        let job: EncodedJob
        try {
          job = await decodeJob(message.job)
        } catch (err) {
          send({ type: 'error', id: message.id, error: errorToWire(err) })
          continue
        }
        const controller = new AbortController()
        inFlight.set(message.id, controller)
        this.acquire(controller, requester)
        // a fast job's receipt says all that `accepted` would: announce only jobs still running after a moment
        const acceptedNotice = setTimeout(() => { send({ type: 'accepted', id: message.id }) }, ACCEPTED_NOTICE_MS)
        this.dispatchEvent(new CustomEvent<ServedJob>('job:start', { detail: { job: job.cid.toString(), requester } }))
        this.runJob(job, controller.signal)
          .then(signed => ({ response: { type: 'receipt', id: message.id, receipt: encodeSignedReceipt(signed) } as const, signed }), err => ({ response: { type: 'error', id: message.id, error: errorToWire(err) } as const, signed: undefined }))
          .then(({ response, signed }) => {
            clearTimeout(acceptedNotice)
            // free the slot before answering: the requester sends its next job as soon as it reads this
            inFlight.delete(message.id)
            this.release(controller, requester)
            send(response)
            this.dispatchEvent(new CustomEvent<ServedJob>('job:end', { detail: { job: job.cid.toString(), requester, ...(signed != null ? { signed } : {}) } }))
          })
      }
    } catch {
      // end of stream, reset, or a frame over the size limit: nothing more will come
    } finally {
      clearInterval(heartbeat)
      // with the requester gone, nobody can use the results
      for (const controller of inFlight.values()) {
        controller.abort(new Error('the requester closed the stream'))
      }
      stream.abort(new MalformedMessageError('job stream closed'))
    }
  }

  /**
   * Whether a requester may take a free slot now. Slots are shared fairly:
   * requesters turned away wait in line, by when they were first turned
   * away, and a free slot goes to the longest waiting. Without this, a
   * requester with a deep queue would take every slot the moment it frees,
   * and starve the rest.
   */
  private admits (requester: string): boolean {
    const free = this.slots - this.busy
    if (free <= 0) {
      return false
    }
    const now = Date.now()
    const mySince = this.waiting.get(requester)?.since ?? now
    let ahead = 0
    for (const [peer, wait] of this.waiting) {
      if (now - wait.last > FAIR_SHARE_WINDOW_MS) {
        this.waiting.delete(peer) // stopped asking: gone, or served elsewhere
      } else if (peer !== requester && wait.since < mySince) {
        ahead++
      }
    }
    if (free <= ahead) {
      return false
    }
    // while others wait, nobody takes more than an equal share of the slots
    const others = [...this.waiting.keys()].filter(peer => peer !== requester).length
    if (others > 0 && (this.held.get(requester) ?? 0) >= Math.ceil(this.slots / (this.held.size + others + (this.held.has(requester) ? 0 : 1)))) {
      return false
    }
    this.waiting.delete(requester)
    return true
  }

  /** Puts a requester in line (or keeps it there) and returns how many are ahead of it. */
  private turnAway (requester: string): number {
    const now = Date.now()
    const since = this.waiting.get(requester)?.since ?? now
    if (this.waiting.size < MAX_WAITING_REQUESTERS || this.waiting.has(requester)) {
      this.waiting.set(requester, { since, last: now })
    }
    let ahead = 0
    for (const [peer, wait] of this.waiting) {
      if (peer !== requester && wait.since < since) {
        ahead++
      }
    }
    return ahead
  }

  /**
   * A large output goes by CID: we keep its blocks for OUTPUT_TTL_MS, long
   * enough for the requester (and a checker) to fetch them, then delete them,
   * so outputs do not fill the worker's disk.
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
    if (record == null && this.misbehaviour.size >= MAX_WAITING_REQUESTERS) {
      this.misbehaviour.delete(this.misbehaviour.keys().next().value as string)
    }
    this.misbehaviour.set(requester, { count: (record?.count ?? 0) + 1, since: record?.since ?? Date.now() })
  }

  private acquire (controller: AbortController, requester: string): void {
    this.busy++
    this.held.set(requester, (this.held.get(requester) ?? 0) + 1)
    this.running.add(controller)
    this.dispatchEvent(new Event('slots'))
  }

  private release (controller: AbortController, requester: string): void {
    this.busy--
    const held = (this.held.get(requester) ?? 1) - 1
    if (held > 0) {
      this.held.set(requester, held)
    } else {
      this.held.delete(requester)
    }
    this.running.delete(controller)
    this.dispatchEvent(new Event('slots'))
  }

  /** Fetches what the job needs, runs it, and signs the receipt. */
  private async runJob (job: EncodedJob, signal: AbortSignal): Promise<SignedReceipt> {
    const { content, executor, peerId, signer } = this.components
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
      stderr: run.stderr.subarray(Math.max(0, run.stderr.byteLength - MAX_STDERR_BYTES)),
      stats: run.stats,
      timestamp: Date.now()
    }
    if (run.error != null) {
      receipt.error = run.error
    }
    return signReceipt(receipt, signer)
  }
}
