/**
 * The one helper that starts real peers in this process: a bootstrap node and
 * N contributing peers on loopback, in one call, in the spirit of
 * Hyperswarm's `createTestnet(n, teardown)`. For peers as OS processes, see
 * processes.ts.
 */
import { startBootstrap, type BootstrapNode } from '../../node/bootstrap.ts'
import { createPeer, type CreatePeerOptions } from '../../node/create-peer.ts'
import type { Peer } from '../../protocol/peer.ts'
import type { TestFault } from '../../protocol/worker/test-faults.ts'

export interface TestnetOptions {
  /** Slots of each contributing peer. @default 1 */
  slots?: number
  /** Make the first `count` workers misbehave (see protocol/worker/test-faults.ts). */
  faulty?: { count: number, fault: TestFault }
  /** Options for every peer (contributing or not). */
  peer?: CreatePeerOptions
}

export interface Testnet {
  bootstrap: BootstrapNode
  /** The bootstrap node's TCP multiaddr. */
  address: string
  workers: Peer[]
  /** A peer that joins and does not contribute; stopped with the testnet. */
  requester: (options?: CreatePeerOptions) => Promise<Peer>
  stop: () => Promise<void>
}

/** Starts a bootstrap node and `workers` contributing peers; `stop` stops them all and every requester. */
export async function createTestnet (workers: number, options: TestnetOptions = {}): Promise<Testnet> {
  const bootstrap = await startBootstrap()
  const address = bootstrap.addresses().find(addr => !addr.includes('/ws')) as string
  const peers: Peer[] = []
  const join = async (extra: CreatePeerOptions): Promise<Peer> => {
    const peer = await createPeer({ bootstrap: [address], ...options.peer, ...extra })
    peers.push(peer)
    return peer
  }
  const testnet: Testnet = {
    bootstrap,
    address,
    workers: await Promise.all(Array.from({ length: workers }, async (_, i) => join({
      contribute: { threads: options.slots ?? 1 },
      ...(i < (options.faulty?.count ?? 0) ? { fault: options.faulty?.fault } : {})
    }))),
    requester: async (extra = {}) => join(extra),
    stop: async () => {
      await Promise.all(peers.map(async peer => { await peer.stop() }))
      await bootstrap.stop()
    }
  }
  return testnet
}
