import type { LengthPrefixedStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'

/**
 * Runs after the current macrotask and the I/O already read in this loop
 * turn, so frames written by every job that woke on that I/O share one
 * write. Node has setImmediate; browsers fall back to a microtask, which
 * still coalesces one task's frames.
 */
const { setImmediate } = globalThis as { setImmediate?: (run: () => void) => unknown }
export const nextTurn: (run: () => void) => void = setImmediate != null ? run => { setImmediate(run) } : queueMicrotask

/**
 * Writes length-prefixed frames to a stream, coalescing every frame queued
 * in one turn of the event loop into a single write: a muxer frame and a
 * socket write cost about as much for one small message as for a hundred,
 * and a busy job stream queues many in the same turn (a burst of submits, a
 * worker's receipts as its slots finish). Writes stay in order; a failed
 * write fails every later one with the same error.
 */
export class FrameWriter {
  private readonly lp: LengthPrefixedStream<Stream>
  private readonly onError: (err: Error) => void
  private readonly beforeFlush?: () => void
  private pending: Uint8Array[] = []
  private flushing = Promise.resolve()
  private scheduled = false
  private failed?: Error
  /** Frames queued and not yet handed to the stream. */
  private waiting = 0

  /**
   * `beforeFlush` runs just before the frames of a turn go out, and may
   * still write: a caller that gathers messages into one (a batch of
   * submits) writes it there, after everything else its turn produced.
   */
  constructor (lp: LengthPrefixedStream<Stream>, onError: (err: Error) => void, beforeFlush?: () => void) {
    this.lp = lp
    this.onError = onError
    this.beforeFlush = beforeFlush
  }

  /** Frames not yet written: a reader that checks this can stop reading while its answers pile up. */
  get backlog (): number {
    return this.waiting
  }

  /** Queues a frame; it goes out with the others queued in this turn. */
  write (frame: Uint8Array): void {
    if (this.failed != null) {
      return
    }
    this.pending.push(frame)
    this.waiting++
    this.schedule()
  }

  /** Makes sure a flush (and so `beforeFlush`) comes this turn, with or without a frame queued. */
  schedule (): void {
    if (!this.scheduled && this.failed == null) {
      this.scheduled = true
      nextTurn(() => { this.flush() })
    }
  }

  /** Resolves once everything queued so far has been written (or the stream failed). */
  async drained (): Promise<void> {
    while (this.scheduled || this.waiting > 0) {
      await this.flushing
      if (this.failed != null) {
        return
      }
      if (this.scheduled) {
        await new Promise<void>(resolve => { nextTurn(resolve) })
      }
    }
  }

  private flush (): void {
    this.beforeFlush?.()
    this.scheduled = false
    const frames = this.pending
    if (frames.length === 0) {
      return
    }
    this.pending = []
    this.flushing = this.flushing.then(async () => {
      if (this.failed == null) {
        await this.lp.writeV(frames)
      }
    }).catch((err: Error) => {
      this.failed ??= err
      this.onError(err)
    }).finally(() => {
      this.waiting -= frames.length
    })
  }
}
