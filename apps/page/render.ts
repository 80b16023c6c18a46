/**
 * Coalesced rendering: events only mark parts of the page dirty, and a flush
 * redraws them in an animation frame, at most every FLUSH_INTERVAL_MS. A tab
 * serving jobs nonstop would otherwise draw a frame (~7 ms of style, layout
 * and paint here) in every 16 ms and hold each incoming job behind it; live
 * counters read fine at 10 updates a second.
 */
const FLUSH_INTERVAL_MS = 100

export class RenderLoop {
  readonly #dirty = new Set<() => void>()
  #frame: number | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  #flushedAt = -Infinity

  /** Registers a part of the page drawn by `draw`; call the returned function whenever it needs drawing again. */
  part (draw: () => void): () => void {
    return () => { this.#invalidate(draw) }
  }

  #invalidate (draw: () => void): void {
    this.#dirty.add(draw)
    if (this.#timer != null || this.#frame != null) {
      return
    }
    const wait = this.#flushedAt + FLUSH_INTERVAL_MS - performance.now()
    if (wait > 0) {
      this.#timer = setTimeout(this.#schedule, wait)
    } else {
      this.#schedule()
    }
  }

  readonly #schedule = (): void => {
    // rAF never fires in a hidden tab, and contributing tabs are often hidden: a timer backs it up
    this.#frame = document.hidden ? undefined : requestAnimationFrame(this.#flush)
    this.#timer = setTimeout(this.#flush, FLUSH_INTERVAL_MS)
  }

  readonly #flush = (): void => {
    if (this.#frame != null) {
      cancelAnimationFrame(this.#frame)
    }
    clearTimeout(this.#timer)
    this.#frame = this.#timer = undefined
    this.#flushedAt = performance.now()
    const parts = [...this.#dirty]
    this.#dirty.clear()
    for (const draw of parts) {
      draw()
    }
  }
}
