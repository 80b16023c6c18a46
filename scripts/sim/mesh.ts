import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { streamPair } from '@libp2p/utils'
import { MemoryDatastore } from 'datastore-core'
import { capacityService, type AdvertContent, type CapacityService } from '../../protocol/net/capacity.ts'
import { jobClient, type JobClient } from '../../protocol/net/job-client.ts'
import { reputation as reputationService, type Reputation } from '../../protocol/job/reputation.ts'
import { requester as requesterService, type Requester } from '../../protocol/job/requester.ts'
import { Scheduler } from '../../protocol/job/scheduler.ts'
import { ResultStore } from '../../protocol/store/results.ts'
import { contributor as contributorService, type Contributor } from '../../protocol/worker/contributor.ts'
import { ContentFetchError } from '../../protocol/errors.ts'
import { ABIS } from '../../protocol/runtime/executor.ts'
import { MAX_JOB_MEMORY_BYTES, SOFTWARE_VERSION } from '../../protocol/constants.ts'
import { SimPubsub, type GossipNet } from './gossip.ts'
import { stubExecutor, type RunTime, type BusyMeter } from './executor.ts'
import type { ContentStore } from '../../protocol/store/content.ts'
import type { Connection, PeerId, PrivateKey, Stream, StreamHandler } from '@libp2p/interface'

/**
 * The simulated network of peers. Each peer runs the real protocol services
 * (CapacityService, JobClient, Requester with its Scheduler and Reputation,
 * Contributor with its JobServer) on:
 * - gossip: the gossipsub model in gossip.ts;
 * - job streams: libp2p's own in-memory stream pair (@libp2p/utils
 *   `streamPair`: real Stream objects with backpressure, each write delayed
 *   by the link latency), one per requester and worker, as a libp2p dial
 *   would give; opening one costs a dial of three round trips;
 * - a stub executor whose run time is drawn from a distribution.
 * Peers that leave take their streams with them: the other end sees the
 * stream reset and a `peer:disconnect`, as over a real connection.
 */

/** Whom a simulated peer's streams lead to, so both ends learn when one end goes. */
interface Link { remote: SimNode, streams: Stream[] }

export interface NetworkParams {
  latencyMs: number
}

/** What the services see of libp2p: handlers, dialing, events. */
export class SimNode {
  readonly key: PrivateKey
  readonly peerId: PeerId
  readonly id: string
  readonly pubsub: SimPubsub
  /** libp2p's events (`peer:disconnect`). */
  readonly events = new EventTarget()
  readonly capacity: CapacityService
  readonly joinedAt = Date.now()
  leftAt?: number
  contributor?: Contributor
  requester?: { requester: Requester, client: JobClient, reputation: Reputation }
  slots = 0
  private readonly handlers = new Map<string, StreamHandler>()
  private readonly links = new Map<string, Link>()
  private readonly world: SimWorld

  constructor (key: PrivateKey, world: SimWorld) {
    this.key = key
    this.peerId = peerIdFromPrivateKey(key)
    this.id = this.peerId.toString()
    this.world = world
    this.pubsub = new SimPubsub(this.peerId, world.gossip)
    const knows = (peerId: string): boolean => this.links.has(peerId) || this.requester?.reputation.hasDelivered(peerId) === true
    this.capacity = capacityService({ intervalMs: world.advertIntervalMs, stretchMinAgeMs: world.stretchMinAgeMs })({ pubsub: this.pubsub.asGossipSub(), peerId: this.peerId, events: this.events as never, knows })
  }

  get alive (): boolean {
    return this.leftAt == null
  }

  // --- the part of libp2p the services use ---

  getMultiaddrs (): never[] {
    return []
  }

  readonly peerStore = { merge: async () => {} }

  async handle (protocol: string, handler: StreamHandler): Promise<void> {
    this.handlers.set(protocol, handler)
  }

  async unhandle (protocol: string): Promise<void> {
    this.handlers.delete(protocol)
  }

  getConnections (): Connection[] {
    return [...this.links.values()].map(link => ({ remotePeer: link.remote.peerId }) as unknown as Connection)
  }

  async dialProtocol (peer: PeerId, protocol: string, options: { signal?: AbortSignal } = {}): Promise<Stream> {
    const latency = this.world.network.latencyMs
    // a TCP handshake, noise and multistream-select: about three round trips
    await new Promise(resolve => setTimeout(resolve, 6 * latency))
    options.signal?.throwIfAborted()
    const remote = this.world.nodes.get(peer.toString())
    const handler = remote?.handlers.get(protocol)
    if (remote == null || !remote.alive || handler == null || !this.alive) {
      throw new Error(`could not dial ${peer.toString()}: ${remote?.alive === true ? 'protocol not handled' : 'the peer is gone'}`)
    }
    const [outbound, inbound] = await streamPair({ delay: latency, protocol, capacity: 64 })
    this.link(remote).streams.push(outbound)
    remote.link(this).streams.push(inbound)
    handler(inbound, { remotePeer: this.peerId } as unknown as Connection)
    return outbound
  }

  private link (remote: SimNode): Link {
    let link = this.links.get(remote.id)
    if (link == null) {
      link = { remote, streams: [] }
      this.links.set(remote.id, link)
    }
    return link
  }

  /** The other end of a link went away: its streams reset, libp2p says the peer disconnected. */
  private lost (remote: SimNode): void {
    const link = this.links.get(remote.id)
    if (link == null) {
      return
    }
    this.links.delete(remote.id)
    for (const stream of link.streams) {
      stream.abort(new Error('connection reset'))
    }
    this.events.dispatchEvent(new CustomEvent('peer:disconnect', { detail: remote.peerId }))
  }

  /** Leaves the network at once, as a closed tab or a crash would: no goodbye advert. */
  async crash (): Promise<void> {
    this.leftAt = Date.now()
    this.pubsub.unsubscribe('*')
    this.world.gossip.leave(this.id)
    for (const link of [...this.links.values()]) {
      link.remote.lost(this)
      this.lost(link.remote)
    }
    await this.contributor?.stop()
    this.requester?.requester.stop()
    this.requester?.client.stop()
    this.capacity.stop()
  }
}

/** Everything the simulated peers share. */
export class SimWorld {
  readonly gossip: GossipNet
  readonly network: NetworkParams
  readonly nodes = new Map<string, SimNode>()
  readonly advertIntervalMs?: number
  readonly stretchMinAgeMs?: number
  readonly busy: BusyMeter
  readonly runTime: RunTime
  private readonly content: ContentStore

  constructor (init: { gossip: GossipNet, network: NetworkParams, runTime: RunTime, busy: BusyMeter, advertIntervalMs?: number, stretchMinAgeMs?: number }) {
    this.gossip = init.gossip
    this.network = init.network
    this.runTime = init.runTime
    this.busy = init.busy
    this.advertIntervalMs = init.advertIntervalMs
    this.stretchMinAgeMs = init.stretchMinAgeMs
    const unreachable = async (): Promise<never> => { throw new ContentFetchError('the simulation has no content store: jobs carry their input inline') }
    this.content = { get: unreachable, getTree: unreachable, addTree: unreachable, add: unreachable, remove: unreachable, has: async () => false } as unknown as ContentStore
  }

  /** A worker that joins, announces itself and contributes `slots` slots; a liar signs wrong outputs. */
  async addWorker (slots: number, liar = false): Promise<SimNode> {
    const node = await this.addNode()
    node.slots = slots
    node.contributor = contributorService(liar ? { fault: 'wrong-output' } : {})({
      libp2p: node as never,
      signer: node.key,
      content: this.content,
      capacity: node.capacity,
      createExecutor: n => stubExecutor(n, this.runTime, this.busy),
      platform: 'node',
      // simulated workers offer compute only
      storage: { advertFields: () => ({ storageBytes: 0 }), setOffer: () => {} }
    })
    await node.contributor.contribute({ threads: slots })
    return node
  }

  /** A requester: the requester side of the protocol, announcing itself with a zero-slot advert. */
  async addRequester (): Promise<SimNode> {
    const node = await this.addNode()
    const datastore = new MemoryDatastore()
    const reputation = reputationService()({ datastore })
    await reputation.start()
    const client = jobClient()({ libp2p: node as never, events: node.events as never, capacity: node.capacity })
    client.start()
    const requester = requesterService({})({ peerId: node.peerId, capacity: node.capacity, client, content: this.content, scheduler: new Scheduler({ reputation, client }), reputation, results: new ResultStore({ datastore, content: this.content }) })
    requester.start()
    node.requester = { requester, client, reputation }
    void node.capacity.announce(requesterAdvert(), new AbortController().signal)
    return node
  }

  private async addNode (): Promise<SimNode> {
    const node = new SimNode(await generateKeyPair('Ed25519'), this)
    this.nodes.set(node.id, node)
    node.capacity.start()
    return node
  }

  workers (): SimNode[] {
    return [...this.nodes.values()].filter(node => node.alive && node.contributor != null)
  }

  async stop (): Promise<void> {
    for (const node of this.nodes.values()) {
      if (node.alive) {
        await node.crash()
      }
    }
    this.gossip.stop()
  }
}

function requesterAdvert (): AdvertContent {
  return { v: 1, slots: { total: 0, free: 0 }, memoryBytes: MAX_JOB_MEMORY_BYTES, storageBytes: 0, abis: [...ABIS], cached: [], addrs: [], version: SOFTWARE_VERSION, platform: 'node' }
}
