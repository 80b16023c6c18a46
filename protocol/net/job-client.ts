import { lpStream } from '@libp2p/utils'
import { HEARTBEAT_TIMEOUT_MS, JOB_PROTOCOL, MAX_MESSAGE_BYTES, MAX_SUBMIT_BATCH } from '../constants.ts'
import { errorFromWire, InvalidReceiptError, WorkerBusyError, WorkerLostError } from '../errors.ts'
import { decodeResponse, encodeMessage, type ChunkResult, type JobRequest, type SubmittedJob } from '../wire/messages.ts'
import { decodeSignedReceipt, type SignedReceipt } from '../wire/receipt.ts'
import type { EncodedJob } from '../wire/job.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { FrameWriter } from './frame-writer.ts'
import type { CapacityService } from './capacity.ts'
import type { Libp2p, Libp2pEvents, PeerId, Stream, TypedEventTarget } from '@libp2p/interface'

export interface JobClientComponents {
  libp2p: Pick<Libp2p, 'dialProtocol' | 'peerStore'>
  /** libp2p's events: the stream to a peer that disconnects is dropped at once. */
  events: TypedEventTarget<Libp2pEvents>
  /** Where a worker's advertised addresses are found, to dial it. */
  capacity: Pick<CapacityService, 'get'>
}

export interface SubmitOptions {
  signal: AbortSignal
  /** Called when the worker says the job is running (only for jobs that take more than a few milliseconds). */
  onAccepted?: () => void
}

/**
 * The requester side of the job protocol: one long-lived stream per worker,
 * with requests pipelined on it and answers matched by id. Opening a stream
 * costs a round trip (several over WebRTC), so it is paid once per worker.
 */
export class JobClient {
  private readonly components: JobClientComponents
  private readonly sessions = new Map<string, Promise<Session>>()
  /** The credit window each worker granted us on its open stream. */
  private readonly windows = new Map<string, number>()

  constructor (components: JobClientComponents) {
    this.components = components
  }

  /**
   * Sends a job to a worker and waits for its signed receipt (not yet
   * verified). Rejects with WorkerBusyError when the worker has no free slot,
   * WorkerLostError when the stream breaks, the worker's own error when it
   * refuses the job, or `signal.reason` on abort, in which case the worker is
   * told to cancel.
   */
  async submit (peerId: string, job: EncodedJob, options: SubmitOptions): Promise<SignedReceipt> {
    const session = await this.session(peerId, options.signal)
    return session.submit(job, options)
  }

  /**
   * Sends jobs to a worker as one chunk (`submitChunk`: one slot, one
   * answer) and waits for the answer: for each job in order, its signed
   * receipt (not yet verified) or the error it has instead. Rejects as
   * `submit` does when the chunk as a whole got no answer.
   */
  async submitChunk (peerId: string, jobs: readonly EncodedJob[], options: SubmitOptions): Promise<ChunkAnswer[]> {
    const session = await this.session(peerId, options.signal)
    return session.submitChunk(jobs, options)
  }

  /**
   * How many of our jobs the worker said it takes at once, running and
   * queued (its credit window), or undefined before it said so.
   */
  granted (peerId: string): number | undefined {
    return this.windows.get(peerId)
  }

  /** Drops the stream to a worker, failing its pending requests. */
  drop (peerId: string, reason: Error): void {
    const session = this.sessions.get(peerId)
    this.sessions.delete(peerId)
    this.windows.delete(peerId)
    void session?.then(s => { s.close(reason) }, () => {})
  }

  start (): void {
    this.components.events.addEventListener('peer:disconnect', this.onDisconnect)
  }

  stop (): void {
    this.components.events.removeEventListener('peer:disconnect', this.onDisconnect)
    for (const peerId of [...this.sessions.keys()]) {
      this.drop(peerId, new WorkerLostError('the requester is shutting down'))
    }
  }

  private readonly onDisconnect = (event: CustomEvent<PeerId>): void => {
    const peerId = event.detail.toString()
    this.drop(peerId, new WorkerLostError(`${peerId} disconnected`))
  }

  /** Dials the worker at the addresses it advertised (a tab is reachable only there) and opens a job stream. */
  private async openStream (peerId: string, signal: AbortSignal): Promise<Stream> {
    const { libp2p, capacity } = this.components
    const id = peerIdFromString(peerId)
    const addrs = capacity.get(peerId)?.advert.addrs ?? []
    if (addrs.length > 0) {
      await libp2p.peerStore.merge(id, { multiaddrs: addrs.map(bytes => multiaddr(bytes)) })
    }
    return libp2p.dialProtocol(id, JOB_PROTOCOL, { signal })
  }

  private async session (peerId: string, signal: AbortSignal): Promise<Session> {
    let session = this.sessions.get(peerId)
    if (session == null) {
      session = this.openStream(peerId, signal).then(stream => new Session(stream, {
        onClose: () => {
          this.sessions.delete(peerId)
          this.windows.delete(peerId)
        },
        onCredit: window => { this.windows.set(peerId, window) }
      }))
      this.sessions.set(peerId, session)
      session.catch(() => { this.sessions.delete(peerId) })
    }
    try {
      return await session
    } catch (err) {
      throw new WorkerLostError(`could not open a job stream to ${peerId}: ${(err as Error).message}`, { cause: err })
    }
  }
}

/** One job's part of a chunk's answer. */
export type ChunkAnswer = { signed: SignedReceipt } | { error: Error }

/** Room left in a `submitMany` frame for its envelope and each job's id and framing. */
const BATCH_ENVELOPE_BYTES = 64
const PER_JOB_OVERHEAD_BYTES = 16

/**
 * With this many of our jobs already at the worker, new submits wait up to
 * SUBMIT_HOLD_MS for more to share their message and write: the worker has
 * work queued meanwhile, so the pipe does not drain, and a requester feeding
 * a wide `map` spends a tenth of its time in socket writes otherwise. Below
 * it (a single `run`, a trickle) they go out this turn.
 */
const SUBMIT_HOLD_IN_FLIGHT = 16
const SUBMIT_HOLD_MS = 2

/** A request waiting for its answer: a `receipt` for a job, a `chunk` for a chunk. */
interface Pending {
  reject: (err: Error) => void
  onReceipt?: (receipt: Uint8Array) => void
  onChunk?: (results: ChunkResult[]) => void
  onAccepted?: () => void
}

interface SessionEvents {
  onClose: () => void
  onCredit: (window: number) => void
}

class Session {
  private readonly stream: Stream
  private readonly lp: ReturnType<typeof lpStream<Stream>>
  private readonly writer: FrameWriter
  private readonly pending = new Map<number, Pending>()
  private readonly events: SessionEvents
  /** Submits not written yet (this turn's, or held while the worker is busy with ours): they go out together, as one `submitMany` when there are several. */
  private unsent: SubmittedJob[] = []
  private unsentBytes = 0
  private hold?: ReturnType<typeof setTimeout>
  private nextId = 1
  private closed?: Error
  private lastHeardAt = Date.now()
  private readonly watchdog: ReturnType<typeof setInterval>

  constructor (stream: Stream, events: SessionEvents) {
    this.stream = stream
    this.lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    this.writer = new FrameWriter(this.lp, (err) => {
      this.close(new WorkerLostError(`lost the job stream to the worker: ${err.message}`, { cause: err }))
    }, () => { this.writeUnsent() })
    this.events = events
    // a worker that vanishes without closing (a tab killed, a machine asleep) is noticed by its silence
    this.watchdog = setInterval(() => {
      if (this.pending.size > 0 && Date.now() - this.lastHeardAt > HEARTBEAT_TIMEOUT_MS) {
        this.close(new WorkerLostError(`the worker fell silent: no answer or heartbeat for ${HEARTBEAT_TIMEOUT_MS} ms`))
      }
    }, HEARTBEAT_TIMEOUT_MS / 3)
    void this.readLoop()
  }

  async submit (job: EncodedJob, options: SubmitOptions): Promise<SignedReceipt> {
    const { id, promise, reject } = this.request<SignedReceipt>(options, resolve => ({
      onReceipt: bytes => { resolve(decodeSignedReceipt(bytes)) }
    }))
    const onAbort = (): void => {
      if (this.pending.delete(id)) {
        // not sent yet: it simply never goes; else the worker is told (after the submit, which is written first)
        const unsent = this.unsent.findIndex(entry => entry.id === id)
        if (unsent >= 0) {
          this.unsentBytes -= (this.unsent[unsent] as SubmittedJob).job.byteLength + PER_JOB_OVERHEAD_BYTES
          this.unsent.splice(unsent, 1)
        } else {
          this.send({ type: 'cancel', id })
        }
        reject(options.signal.reason)
      }
    }
    options.signal.addEventListener('abort', onAbort, { once: true })
    this.queueSubmit({ id, job: job.bytes })
    try {
      return await promise
    } finally {
      options.signal.removeEventListener('abort', onAbort)
    }
  }

  async submitChunk (jobs: readonly EncodedJob[], options: SubmitOptions): Promise<ChunkAnswer[]> {
    const { id, promise, reject } = this.request<ChunkAnswer[]>(options, resolve => ({
      onChunk: results => {
        if (results.length !== jobs.length) {
          throw new InvalidReceiptError(`the worker answered a chunk of ${jobs.length} jobs with ${results.length} results`)
        }
        resolve(results.map(result => 'receipt' in result ? { signed: decodeSignedReceipt(result.receipt) } : { error: errorFromWire(result.error) }))
      }
    }))
    const onAbort = (): void => {
      if (this.pending.delete(id)) {
        this.send({ type: 'cancel', id })
        reject(options.signal.reason)
      }
    }
    options.signal.addEventListener('abort', onAbort, { once: true })
    this.send({ type: 'submitChunk', id, jobs: jobs.map(job => job.bytes) })
    try {
      return await promise
    } finally {
      options.signal.removeEventListener('abort', onAbort)
    }
  }

  /** Registers a request waiting for its answer; `handlers` turn the answer into the result. */
  private request<T> (options: SubmitOptions, handlers: (resolve: (value: T) => void) => Omit<Pending, 'reject' | 'onAccepted'>): { id: number, promise: Promise<T>, reject: (err: Error) => void } {
    if (this.closed != null) {
      throw this.closed
    }
    options.signal.throwIfAborted()
    if (this.pending.size === 0) {
      this.lastHeardAt = Date.now() // silence while idle does not count
    }
    const id = this.nextId++
    const { promise, resolve, reject } = Promise.withResolvers<T>()
    this.pending.set(id, { ...handlers(resolve), reject, onAccepted: options.onAccepted })
    return { id, promise, reject }
  }

  close (reason: Error): void {
    if (this.closed != null) {
      return
    }
    this.closed = reason
    clearTimeout(this.hold)
    this.unsent = []
    this.unsentBytes = 0
    clearInterval(this.watchdog)
    this.events.onClose()
    for (const pending of this.pending.values()) {
      pending.reject(reason)
    }
    this.pending.clear()
    this.stream.abort(reason)
  }

  private send (request: JobRequest): void {
    this.writeUnsent() // every message after the submits queued before it
    this.writer.write(encodeMessage(request))
  }

  /**
   * Holds a submit until the end of this turn, so the jobs placed on this
   * worker in one turn (a burst of `map`) share one message; a lone `run`
   * goes out in the same write it would have had anyway.
   */
  private queueSubmit (entry: SubmittedJob): void {
    const bytes = entry.job.byteLength + PER_JOB_OVERHEAD_BYTES
    if (this.unsent.length >= MAX_SUBMIT_BATCH || (this.unsent.length > 0 && this.unsentBytes + bytes > MAX_MESSAGE_BYTES - BATCH_ENVELOPE_BYTES)) {
      this.writeUnsent()
    }
    this.unsent.push(entry)
    this.unsentBytes += bytes
    if (this.pending.size - this.unsent.length >= SUBMIT_HOLD_IN_FLIGHT) {
      this.hold ??= setTimeout(() => { this.writeUnsent() }, SUBMIT_HOLD_MS)
    } else {
      this.writer.schedule()
    }
  }

  private writeUnsent (): void {
    clearTimeout(this.hold)
    this.hold = undefined
    const jobs = this.unsent
    if (jobs.length === 0) {
      return
    }
    this.unsent = []
    this.unsentBytes = 0
    const [first] = jobs as [SubmittedJob]
    this.writer.write(encodeMessage(jobs.length === 1 ? { type: 'submit', id: first.id, job: first.job } : { type: 'submitMany', id: 0, jobs }))
  }

  private async readLoop (): Promise<void> {
    try {
      while (true) {
        const response = decodeResponse((await this.lp.read()).subarray())
        this.lastHeardAt = Date.now()
        if (response.type === 'alive') {
          continue
        }
        if (response.type === 'credit') {
          this.events.onCredit(response.window)
          continue
        }
        const pending = this.pending.get(response.id)
        if (pending == null) {
          continue // answer to a cancelled request, or an error about an undecodable one
        }
        switch (response.type) {
          case 'accepted':
            pending.onAccepted?.()
            continue
          case 'busy':
            this.pending.delete(response.id)
            pending.reject(new WorkerBusyError('the worker has no room for more of our jobs (its credit is used up)'))
            continue
          case 'error':
            this.pending.delete(response.id)
            pending.reject(errorFromWire(response.error))
            continue
          case 'receipt':
          case 'chunk':
            this.pending.delete(response.id)
            try {
              if (response.type === 'receipt' && pending.onReceipt != null) {
                pending.onReceipt(response.receipt)
              } else if (response.type === 'chunk' && pending.onChunk != null) {
                pending.onChunk(response.results)
              } else {
                throw new InvalidReceiptError(`the worker answered with a ${response.type} where it owed ${pending.onChunk != null ? 'a chunk' : 'a receipt'}`)
              }
            } catch (err) {
              pending.reject(err as Error)
            }
        }
      }
    } catch (err) {
      this.close(new WorkerLostError(`the worker closed the job stream: ${(err as Error).message}`, { cause: err }))
    }
  }
}

export function jobClient (): (components: JobClientComponents) => JobClient {
  return components => new JobClient(components)
}
