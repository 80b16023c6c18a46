/**
 * Coalesced rendering: events only mark parts of the page dirty, and a flush
 * redraws them at most once per frame, so a tab serving many jobs a second
 * spends its time on the jobs, not on redrawing the same peer list.
 */
export class RenderLoop {
  readonly #dirty = new Set<() => void>()
  #frame: number | undefined
  #timer: ReturnType<typeof setTimeout> | undefined

  /** Registers a part of the page drawn by `draw`; call the returned function whenever it needs drawing again. */
  part (draw: () => void): () => void {
    return () => { this.#invalidate(draw) }
  }

  #invalidate (draw: () => void): void {
    this.#dirty.add(draw)
    if (this.#timer != null) {
      return
    }
    // rAF never fires in a hidden tab, and contributing tabs are often hidden: a timer backs it up
    this.#frame = document.hidden ? undefined : requestAnimationFrame(this.#flush)
    this.#timer = setTimeout(this.#flush, 100)
  }

  readonly #flush = (): void => {
    if (this.#frame != null) {
      cancelAnimationFrame(this.#frame)
    }
    clearTimeout(this.#timer)
    this.#frame = this.#timer = undefined
    const parts = [...this.#dirty]
    this.#dirty.clear()
    for (const draw of parts) {
      draw()
    }
  }
}
