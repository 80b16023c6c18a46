import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'

/**
 * A model of gossipsub for the simulation: the real CapacityService runs on
 * it unchanged (it sees the same `publish`, `subscribe`, topic validators and
 * `message` / `subscription-change` events a GossipSub node gives it).
 *
 * What is modelled, with gossipsub's defaults: a mesh of degree D = 6 per
 * peer (kept between Dlo = 4 and Dhi = 12 at every 1 s heartbeat); a message
 * goes from its publisher to its mesh peers and from each peer, the first
 * time it sees it and only if its validator accepts it, to its other mesh
 * peers (so a peer receives up to D copies); every heartbeat each peer sends
 * IHAVE with the ids it saw in the last 3 heartbeats to Dlazy = 6 other
 * peers, which ask for (IWANT) and receive the ones they missed. Each hop
 * takes the link latency (plus jitter) and is lost with the loss rate.
 *
 * Bytes are counted as they would cross the wire: a message is its data plus
 * MESSAGE_OVERHEAD (signed envelope: author, seqno, topic, signature;
 * protobuf framing; noise and yamux framing); an IHAVE or IWANT is
 * CONTROL_OVERHEAD plus MESSAGE_ID_BYTES per id. What is not modelled:
 * peer scoring, PX, the fanout of non-subscribers, IDONTWANT (only sent for
 * messages over 1 KiB; adverts are smaller), and connections other than the mesh.
 */

export const MESSAGE_OVERHEAD = 178
export const MESSAGE_ID_BYTES = 48
export const CONTROL_OVERHEAD = 60

export interface GossipParams {
  D: number
  Dlo: number
  Dhi: number
  Dlazy: number
  heartbeatMs: number
  historyGossip: number
  latencyMs: number
  jitterMs: number
  loss: number
  random: () => number
}

export const GOSSIPSUB_DEFAULTS = { D: 6, Dlo: 4, Dhi: 12, Dlazy: 6, heartbeatMs: 1000, historyGossip: 3 }

/** Traffic one peer saw. */
export interface PeerTraffic {
  bytesIn: number
  bytesOut: number
  /** RPCs received: messages (duplicates included) and IHAVE/IWANT. */
  messagesIn: number
  /** Distinct messages delivered to the peer's application. */
  delivered: number
  /** Their data bytes. */
  payloadIn: number
}

interface Published {
  id: number
  from: PeerId
  topic: string
  data: Uint8Array
  at: number
}

/** The topic mesh all simulated peers' pubsub share. */
export class GossipNet {
  readonly params: GossipParams
  private readonly nodes = new Map<string, SimPubsub>()
  /** The nodes' ids, for sampling; rebuilt after a join or leave. */
  private ids?: string[]
  private readonly mesh = new Map<string, Set<string>>()
  private readonly store = new Map<number, Published>()
  private nextId = 0
  private heartbeat?: ReturnType<typeof setInterval>

  constructor (params: Partial<GossipParams> & Pick<GossipParams, 'random'>) {
    this.params = { ...GOSSIPSUB_DEFAULTS, latencyMs: 20, jitterMs: 10, loss: 0, ...params }
  }

  start (): void {
    this.heartbeat = setInterval(() => { this.onHeartbeat() }, this.params.heartbeatMs)
  }

  stop (): void {
    clearInterval(this.heartbeat)
  }

  get size (): number {
    return this.nodes.size
  }

  /** Every peer's traffic counters. */
  traffic (): PeerTraffic[] {
    return [...this.nodes.values()].map(node => node.traffic)
  }

  /** A peer subscribed: it grafts D random peers of the topic, and both ends hear of the subscription. */
  join (node: SimPubsub): void {
    const id = node.id
    this.nodes.set(id, node)
    this.ids = undefined
    this.mesh.set(id, new Set())
    for (const other of this.sample(this.params.D, id, peer => (this.mesh.get(peer)?.size ?? 0) < this.params.Dhi)) {
      this.graft(id, other)
    }
  }

  /** A peer left (unsubscribed, stopped or crashed): its mesh links go. */
  leave (id: string): void {
    for (const other of this.mesh.get(id) ?? []) {
      this.mesh.get(other)?.delete(id)
    }
    this.mesh.delete(id)
    this.nodes.delete(id)
    this.ids = undefined
  }

  neighbours (id: string): string[] {
    return [...this.mesh.get(id) ?? []]
  }

  publish (from: SimPubsub, topic: string, data: Uint8Array): void {
    const message: Published = { id: this.nextId++, from: from.peerId, topic, data, at: Date.now() }
    this.store.set(message.id, message)
    from.seen.set(message.id, Date.now())
    from.recent(message.id)
    for (const other of this.mesh.get(from.id) ?? []) {
      this.send(from.id, other, message)
    }
  }

  private graft (a: string, b: string): void {
    this.mesh.get(a)?.add(b)
    this.mesh.get(b)?.add(a)
    const A = this.nodes.get(a)
    const B = this.nodes.get(b)
    if (A == null || B == null) {
      return
    }
    A.traffic.bytesOut += CONTROL_OVERHEAD
    B.traffic.bytesIn += CONTROL_OVERHEAD
    A.subscriptionChanged()
    B.subscriptionChanged()
  }

  /** Up to `count` random peers other than `self` passing `filter`. */
  private sample (count: number, self: string, filter: (peer: string) => boolean = () => true): string[] {
    this.ids ??= [...this.nodes.keys()]
    const ids = this.ids
    const picked = new Set<string>()
    for (let tries = 0; picked.size < count && tries < count * 8 && ids.length > 1; tries++) {
      const peer = ids[Math.floor(this.params.random() * ids.length)] as string
      if (peer !== self && filter(peer)) {
        picked.add(peer)
      }
    }
    return [...picked]
  }

  /** Deliveries due, by virtual millisecond: one timer per millisecond rather than one per hop. */
  private readonly due = new Map<number, Array<() => void>>()

  private later (ms: number, deliver: () => void): void {
    const at = Math.ceil(Date.now() + ms)
    let batch = this.due.get(at)
    if (batch == null) {
      batch = []
      this.due.set(at, batch)
      setTimeout(() => {
        this.due.delete(at)
        for (const fn of batch as Array<() => void>) {
          fn()
        }
      }, at - Date.now())
    }
    batch.push(deliver)
  }

  private delay (): number {
    return this.params.latencyMs + this.params.random() * this.params.jitterMs
  }

  /** One hop of a full message. */
  private send (fromId: string, toId: string, message: Published): void {
    const from = this.nodes.get(fromId)
    const size = message.data.byteLength + MESSAGE_OVERHEAD
    if (from != null) {
      from.traffic.bytesOut += size
    }
    if (this.params.random() < this.params.loss) {
      return
    }
    const receiver = this.nodes.get(toId)
    if (receiver?.seen.has(message.id) === true) {
      // a duplicate to a peer that has the message already: it only costs bytes, counted now rather than a hop later
      receiver.traffic.bytesIn += size
      receiver.traffic.messagesIn++
      return
    }
    this.later(this.delay(), () => {
      const to = this.nodes.get(toId)
      if (to == null) {
        return // it left while the message was on the way
      }
      to.traffic.bytesIn += size
      to.traffic.messagesIn++
      if (to.seen.has(message.id)) {
        return
      }
      to.seen.set(message.id, Date.now())
      if (!to.receive(message)) {
        return // rejected or ignored by its validator: not delivered, not forwarded
      }
      to.recent(message.id)
      for (const other of this.mesh.get(toId) ?? []) {
        if (other !== fromId && other !== message.from.toString()) {
          this.send(toId, other, message)
        }
      }
    })
  }

  private onHeartbeat (): void {
    const { D, Dlo, Dhi, Dlazy } = this.params
    const now = Date.now()
    for (const [id, peers] of this.mesh) {
      if (peers.size < Dlo) {
        for (const other of this.sample(D - peers.size, id, peer => !peers.has(peer) && (this.mesh.get(peer)?.size ?? 0) < Dhi)) {
          this.graft(id, other)
        }
      } else if (peers.size > Dhi) {
        for (const other of [...peers].slice(D)) {
          peers.delete(other)
          this.mesh.get(other)?.delete(id)
        }
      }
    }
    for (const node of this.nodes.values()) {
      const ids = node.gossipIds()
      node.shiftHistory(this.params.historyGossip)
      node.expireSeen(now)
      if (ids.length === 0) {
        continue
      }
      const mesh = this.mesh.get(node.id) ?? new Set()
      for (const targetId of this.sample(Dlazy, node.id, peer => !mesh.has(peer))) {
        const ihave = CONTROL_OVERHEAD + ids.length * MESSAGE_ID_BYTES
        node.traffic.bytesOut += ihave
        if (this.params.random() < this.params.loss) {
          continue
        }
        const target = this.nodes.get(targetId) as SimPubsub
        target.traffic.bytesIn += ihave
        target.traffic.messagesIn++
        const missing = ids.filter(mid => !target.seen.has(mid) && this.store.has(mid))
        if (missing.length > 0) {
          const iwant = CONTROL_OVERHEAD + missing.length * MESSAGE_ID_BYTES
          target.traffic.bytesOut += iwant
          node.traffic.bytesIn += iwant
          node.traffic.messagesIn++
          for (const mid of missing) {
            this.send(node.id, targetId, this.store.get(mid) as Published)
          }
        }
      }
    }
    for (const [mid, message] of this.store) {
      if (now - message.at > SEEN_TTL_MS) {
        this.store.delete(mid)
      } else {
        break
      }
    }
  }
}

/** How long message ids are remembered (gossipsub's seenTTL). */
const SEEN_TTL_MS = 120_000

/**
 * One simulated peer's pubsub: what CapacityService uses of GossipSub.
 * Cast to GossipSub for the service; only these members exist.
 */
export class SimPubsub extends EventTarget {
  readonly peerId: PeerId
  readonly id: string
  readonly topicValidators = new Map<string, (from: PeerId, message: Message) => TopicValidatorResult | Promise<TopicValidatorResult>>()
  readonly traffic: PeerTraffic = { bytesIn: 0, bytesOut: 0, messagesIn: 0, delivered: 0, payloadIn: 0 }
  readonly seen = new Map<number, number>()
  private readonly net: GossipNet
  private readonly topics = new Set<string>()
  private history: number[][] = [[]]

  constructor (peerId: PeerId, net: GossipNet) {
    super()
    this.peerId = peerId
    this.id = peerId.toString()
    this.net = net
  }

  asGossipSub (): GossipSub {
    return this as unknown as GossipSub
  }

  subscribe (topic: string): void {
    if (!this.topics.has(topic)) {
      this.topics.add(topic)
      this.net.join(this)
    }
  }

  unsubscribe (topic: string): void {
    if (this.topics.delete(topic)) {
      this.net.leave(this.id)
    }
  }

  async publish (topic: string, data: Uint8Array): Promise<{ recipients: PeerId[] }> {
    if (this.topics.has(topic)) {
      this.net.publish(this, topic, data)
    }
    return { recipients: [] }
  }

  getSubscribers (_topic: string): PeerId[] {
    return this.net.neighbours(this.id) as unknown as PeerId[]
  }

  /** A message arrived for the first time: validate it, deliver it if accepted; whether to forward it. */
  receive (published: { from: PeerId, topic: string, data: Uint8Array }): boolean {
    const message = { type: 'signed', from: published.from, topic: published.topic, data: published.data, sequenceNumber: 0n, signature: new Uint8Array(64), key: published.from.publicKey } as unknown as Message
    const validator = this.topicValidators.get(published.topic)
    if (validator != null) {
      const verdict = validator(published.from, message)
      if (verdict !== TopicValidatorResult.Accept) {
        return false
      }
    }
    this.traffic.delivered++
    this.traffic.payloadIn += published.data.byteLength
    this.dispatchEvent(new CustomEvent('message', { detail: message }))
    return true
  }

  subscriptionChanged (): void {
    this.dispatchEvent(new CustomEvent('subscription-change', { detail: { peerId: this.peerId, subscriptions: [] } }))
  }

  recent (id: number): void {
    this.history[0]?.push(id)
  }

  /** The ids of the last `historyGossip` heartbeats: what an IHAVE lists. */
  gossipIds (): number[] {
    return this.history.flat()
  }

  shiftHistory (keep: number): void {
    this.history = [[], ...this.history].slice(0, keep)
  }

  expireSeen (now: number): void {
    for (const [id, at] of this.seen) {
      if (now - at > SEEN_TTL_MS) {
        this.seen.delete(id)
      } else {
        break
      }
    }
  }
}
