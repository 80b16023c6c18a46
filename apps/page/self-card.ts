/**
 * The "This tab" and "Contribute" cards: our peer id, whether others can
 * reach us, our connections, and the switch that shares this tab's compute.
 */
import { $, setText } from './dom.ts'
import { errorDetails, setStatus, showProblem } from './status.ts'
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

  /** Takes over the cards once the peer joined, and enables the switch. */
  constructor (peer: Peer, timings: Timings, render: RenderLoop) {
    this.#peer = peer
    this.#timings = timings
    this.#redraw = render.part(() => { this.#draw() })
    peer.addEventListener('addresses', event => { this.#addresses(event.detail) })
    peer.addEventListener('contribution', this.#redraw)
    peer.addEventListener('work:end', () => {
      this.#served++
      this.#redraw()
    })
    const toggle = $<HTMLInputElement>('contribute-toggle')
    const threads = $<HTMLInputElement>('threads')
    toggle.addEventListener('change', () => { void this.setContribution(toggle.checked, Number(threads.value) || 1) })
    threads.addEventListener('change', () => {
      if (toggle.checked) {
        void this.setContribution(true, Math.max(1, Number(threads.value) || 1))
      }
    })
    toggle.disabled = false
    this.#addresses(peer.addresses())
  }

  async setContribution (on: boolean, threads: number): Promise<void> {
    const toggle = $<HTMLInputElement>('contribute-toggle')
    toggle.disabled = true
    try {
      if (on) {
        await this.#peer.contribute({ threads })
        this.#timings.contributing ??= performance.now()
      } else {
        await this.#peer.stopContributing()
      }
    } catch (err) {
      showProblem({
        title: `This tab could not ${on ? 'start' : 'stop'} sharing its compute.`,
        advice: on ? 'Try again with fewer threads, or reload the page.' : 'Close the tab: that always stops it.',
        details: errorDetails(err)
      })
    } finally {
      toggle.disabled = false
      this.#redraw()
    }
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
    $<HTMLInputElement>('contribute-toggle').checked = contribution != null
  }
}
