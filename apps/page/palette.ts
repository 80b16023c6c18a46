/**
 * One colour per worker, the same everywhere on the page (Mandelbrot tiles,
 * legends, the peer list, the network view, charts). Colours come from
 * Tableau 10, a categorical palette designed to keep its hues apart, and are
 * handed out in the order workers are first seen: the first ten workers
 * always get ten distinct colours, where a hash of the id gave two workers
 * nearly the same pink. The eleventh worker starts the palette again.
 */
export const TABLEAU_10 = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'] as const

const assigned = new Map<string, string>()

/** This worker's colour, assigning the next one on first sight. */
export function workerColour (peerId: string): string {
  let colour = assigned.get(peerId)
  if (colour == null) {
    colour = TABLEAU_10[assigned.size % TABLEAU_10.length] as string
    assigned.set(peerId, colour)
  }
  return colour
}

