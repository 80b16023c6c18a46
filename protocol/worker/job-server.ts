import { lpStream } from '@libp2p/utils'
import { contentHash } from '../wire/cbor.ts'
import { ACCEPTED_NOTICE_MS, FAIR_SHARE_WINDOW_MS, HEARTBEAT_INTERVAL_MS, JOB_PROTOCOL, MAX_INLINE_BYTES, MAX_JOB_STREAMS_PER_CONNECTION, MAX_MESSAGE_BYTES, MAX_PIPELINED_REQUESTS } from '../constants.ts'
import { errorToWire, MalformedMessageError, WorkerLostError } from '../errors.ts'
import { decodeJob, type EncodedJob } from '../wire/job.ts'
import { decodeRequest, encodeMessage, type JobResponse } from '../wire/messages.ts'
import { encodeSignedReceipt, signReceipt, MAX_STDERR_BYTES, type Receipt, type SignedReceipt, type Signer } from '../wire/receipt.ts'
import { executeJob } from './execute-job.ts'
import type { TestFault } from './test-faults.ts'
import type { ContentStore } from '../store/content.ts'
import type { Executor } from '../runtime/executor.ts'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'


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
  }

  private async serve (stream: Stream, requester: string): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    const inFlight = new Map<number, AbortController>()
    let writes = Promise.resolve()
    const send = (response: JobResponse): void => {
      writes = writes.then(async () => { await lp.write(encodeMessage(response)) }).catch(() => {
        // the requester went away; the read loop below sees the stream end and cleans up
      })
    }
    // a stalled worker (the test fault) is one that fell silent: no heartbeat either
    const heartbeat = setInterval(() => {
      if (inFlight.size > 0 && this.fault !== 'stall') {
        send({ type: 'alive', id: 0 })
      }
    }, HEARTBEAT_INTERVAL_MS)
    try {
      while (true) {
        const request = await lp.read()
        let message
        try {
          message = decodeRequest(request.subarray())
        } catch (err) {
          send({ type: 'error', id: 0, error: errorToWire(err) })
          continue
        }
        if (message.type === 'cancel') {
          inFlight.get(message.id)?.abort(new Error('cancelled by the requester'))
          continue
        }
        if (!this.admits(requester) || inFlight.size >= MAX_PIPELINED_REQUESTS) {
          this.turnAway(requester)
          send({ type: 'busy', id: message.id })
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
        this.acquire(controller)
        // a fast job's receipt says all that `accepted` would: announce only jobs still running after a moment
        const acceptedNotice = setTimeout(() => { send({ type: 'accepted', id: message.id }) }, ACCEPTED_NOTICE_MS)
        this.dispatchEvent(new CustomEvent<ServedJob>('job:start', { detail: { job: job.cid.toString(), requester } }))
        this.runJob(job, controller.signal)
          .then(signed => ({ type: 'receipt', id: message.id, receipt: encodeSignedReceipt(signed) }) as const, err => ({ type: 'error', id: message.id, error: errorToWire(err) }) as const)
          .then(response => {
            clearTimeout(acceptedNotice)
            // free the slot before answering: the requester sends its next job as soon as it reads this
            inFlight.delete(message.id)
            this.release(controller)
            send(response)
            this.dispatchEvent(new CustomEvent<ServedJob>('job:end', { detail: { job: job.cid.toString(), requester } }))
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
    this.waiting.delete(requester)
    return true
  }

  private turnAway (requester: string): void {
    const now = Date.now()
    this.waiting.set(requester, { since: this.waiting.get(requester)?.since ?? now, last: now })
  }

  private acquire (controller: AbortController): void {
    this.busy++
    this.running.add(controller)
    this.dispatchEvent(new Event('slots'))
  }

  private release (controller: AbortController): void {
    this.busy--
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
      output: output.byteLength <= MAX_INLINE_BYTES ? output : await content.add(output, signal),
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
