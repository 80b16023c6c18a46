import { multiaddr } from '@multiformats/multiaddr'
import type { PeerCapacity } from '../net/capacity.ts'

export interface PlacementInput {
  /** Bytes the content takes: peers advertising less free space are left out. */
  size: number
  /** Peers never to choose: ourselves, current holders, failed ones. */
  exclude: ReadonlySet<string>
  /** From 0 to 1, our record of the peer (0: banned). */
  score: (peerId: string) => number
}

/** Free bytes a peer advertises: `storageFree` when given, else all it offers. */
export function advertisedFree (peer: PeerCapacity): number {
  return peer.advert.storageFree ?? peer.advert.storageBytes
}

/**
 * Where a peer runs, as far as its advert tells: the relay it is reached
 * through, else the host of its first address. Replicas on one host (or
 * behind one relay) are lost together.
 */
export function hostOf (peer: PeerCapacity): string {
  for (const bytes of peer.advert.addrs) {
    try {
      const text = multiaddr(bytes).toString()
      const circuit = text.indexOf('/p2p-circuit')
      return circuit >= 0 ? text.slice(0, circuit) : text.split('/')[2] ?? text
    } catch {
      // an address we cannot read says nothing about the host
    }
  }
  return peer.peerId
}

/**
 * Storage peers ranked for a new replica: those with room, by record and
 * then free space, one per host first, so K replicas land on K hosts when
 * there are K hosts to choose from.
 */
export function rankHolders (peers: readonly PeerCapacity[], input: PlacementInput): string[] {
  const ranked = peers
    .filter(peer => !input.exclude.has(peer.peerId) && advertisedFree(peer) >= input.size && input.score(peer.peerId) > 0)
    .sort((a, b) => input.score(b.peerId) - input.score(a.peerId) || advertisedFree(b) - advertisedFree(a))
  const hosts = new Set<string>()
  const first: string[] = []
  const rest: string[] = []
  for (const peer of ranked) {
    const host = hostOf(peer)
    if (hosts.has(host)) {
      rest.push(peer.peerId)
    } else {
      hosts.add(host)
      first.push(peer.peerId)
    }
  }
  return [...first, ...rest]
}
