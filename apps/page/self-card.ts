/**
 * The "This tab" card and the Contribute card's counters: our peer id,
 * whether others can reach us, our connections, the jobs we run and served.
 */
import { $, setText } from './dom.ts'
import { setStatus } from './status.ts'
import type { RenderLoop } from './render.ts'
import type { Timings } from './state.ts'
import type { Peer } from '../../web/index.ts'

/** Shows the peer's id and connections from before it joins, so the join itself shows. */
export function showJoining (peer: Peer, timings: Timings): void {
  setText($('peer-id'), peer.id)
  peer.addEventListener('connections', event => {
    setText($('connections'), String(event.detail))
    if (event.detail > 0) {
      timings.connected ??= performance.now()
    }
    if (peer.status === 'started') {
      setStatus(event.detail > 0 ? 'connected' : 'connecting', event.detail > 0 ? 'Connected' : 'Reconnecting…')
    }
  })
}

export class SelfCard {
  readonly #peer: Peer
  readonly #timings: Timings
  readonly #redraw: () => void
  #served = 0
  /** Whether this tab has a relayed WebRTC address; recomputed on address changes only. */
  #reachable = false

  /** Takes over the cards once the peer joined. */
  constructor (peer: Peer, timings: Timings, render: RenderLoop) {
    this.#peer = peer
    this.#timings = timings
    this.#redraw = render.part(() => { this.#draw() })
    peer.addEventListener('addresses', event => { this.#addresses(event.detail) })
    peer.addEventListener('contribution', () => {
      if (peer.contribution != null) {
        this.#timings.contributing ??= performance.now()
      }
      this.#redraw()
    })
    peer.addEventListener('work:end', () => {
      this.#served++
      this.#redraw()
    })
    this.#addresses(peer.addresses())
  }

  #addresses (addresses: string[]): void {
    this.#reachable = addresses.some(a => a.includes('/p2p-circuit/webrtc'))
    if (this.#reachable) {
      this.#timings.reachable ??= performance.now()
    }
    this.#redraw()
  }

  #draw (): void {
    const contribution = this.#peer.contribution
    setText($('capacity'), contribution == null ? 'not contributing' : `${contribution.threads} thread${contribution.threads === 1 ? '' : 's'}, ${contribution.threads - contribution.running} free`)
    setText($('work-running'), String(contribution?.running ?? 0))
    setText($('work-served'), String(this.#served))
    setText($('reachable'), this.#reachable ? 'yes — relay reservation + WebRTC' : 'not yet (waiting for a relay reservation)')
  }
}
