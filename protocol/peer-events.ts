import { describeConnections } from './net/connections.ts'
import type { PeerCapacity } from './net/capacity.ts'
import type { RequesterEvents } from './job/requester.ts'
import type { Services } from './services.ts'
import type { ContributorEvents } from './worker/contributor.ts'
import type { StorageHolderEvents } from './storage/holder.ts'
import type { CapacityAdvert } from './wire/advert.ts'
import type { Libp2p } from '@libp2p/interface'

export interface PeerEvents extends RequesterEvents, ContributorEvents, StorageHolderEvents {
  /** The set of peers we know capacity for changed: read `peer.peers()`. */
  'peers': CustomEvent<PeerCapacity[]>
  /** Connected peers changed: `detail` is how many; read `peer.connections()` for the links. */
  'connections': CustomEvent<number>
  /** Our own dialable addresses changed: `detail` is `peer.addresses()`. */
  'addresses': CustomEvent<string[]>
  /** We published our capacity advert (on contributing, on load changes, and every interval). */
  'advert': CustomEvent<CapacityAdvert>
}

const FROM_REQUESTER = ['job:queued', 'job:running', 'job:retry', 'job:done', 'job:failed'] as const
const FROM_CONTRIBUTOR = ['contribution', 'work:start', 'work:end'] as const
const FROM_HOLDER = ['pinned', 'repaired', 'check:failed'] as const

/**
 * Turns the services' and libp2p's events into a peer's events, and returns
 * a function that detaches every listener it added.
 */
export function relayPeerEvents (peer: EventTarget & { listenerCount: (type: string) => number }, libp2p: Libp2p, services: Pick<Services, 'capacity' | 'requester' | 'contributor' | 'holder'>): () => void {
  const detach: Array<() => void> = []
  const on = (target: EventTarget, type: string, listener: (event: Event) => void): void => {
    target.addEventListener(type, listener)
    detach.push(() => { target.removeEventListener(type, listener) })
  }
  const emit = (type: keyof PeerEvents, detail: unknown): void => {
    // several events per job: an app that listens to none of a type pays nothing for it
    if (peer.listenerCount(type) === 0) {
      return
    }
    try {
      peer.dispatchEvent(new CustomEvent(type, { detail }))
    } catch {
      // a listener threw: that is the app's bug, and must not break the job pipeline
    }
  }
  const detailOf = (event: Event): unknown => (event as CustomEvent).detail
  for (const type of FROM_REQUESTER) {
    on(services.requester, type, event => { emit(type, detailOf(event)) })
  }
  for (const type of FROM_CONTRIBUTOR) {
    on(services.contributor, type, event => { emit(type, detailOf(event)) })
  }
  for (const type of FROM_HOLDER) {
    on(services.holder, type, event => { emit(type, detailOf(event)) })
  }
  on(services.capacity, 'change', () => { emit('peers', services.capacity.peers()) })
  on(services.capacity, 'published', event => { emit('advert', detailOf(event)) })
  on(libp2p, 'self:peer:update', () => { emit('addresses', libp2p.getMultiaddrs().map(ma => ma.toString())) })
  const onConnections = (): void => { emit('connections', describeConnections(libp2p).length) }
  on(libp2p, 'connection:open', onConnections)
  on(libp2p, 'connection:close', onConnections)
  return () => {
    for (const undo of detach.splice(0)) {
      undo()
    }
  }
}
