import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub'
import { decodeAdvert, encodeAdvert, type CapacityAdvert } from '../wire/advert.ts'
import { ADVERT_INTERVAL_MS, ADVERT_MIN_INTERVAL_MS, ADVERT_MISSES_TO_FORGET, CAPACITY_TOPIC } from '../constants.ts'
import type { Libp2pEvents, PeerId, TypedEventTarget } from '@libp2p/interface'

export interface CapacityComponents {
  pubsub: GossipSub
  peerId: PeerId
  /** libp2p's events: a peer that disconnects is forgotten at once. */
  events: TypedEventTarget<Libp2pEvents>
}

export interface CapacityInit {
  /** Re-publish interval in a small mesh; it stretches as the mesh grows. @default ADVERT_INTERVAL_MS */
  intervalMs?: number
  /** Adverts are published at most this often. @default ADVERT_MIN_INTERVAL_MS */
  minIntervalMs?: number
}

/** A remote peer's latest advert. */
export interface PeerCapacity {
  peerId: string
  advert: CapacityAdvert
  /** When we received it (ms since epoch, local clock). */
  seenAt: number
}

/** What a peer says in its advert; the service adds `seq` and `intervalMs` when it publishes. */
export type AdvertContent = Omit<CapacityAdvert, 'seq' | 'intervalMs'>

/** Builds our own advert, or undefined when we do not contribute. */
export type LocalAdvert = () => AdvertContent | undefined

/**
 * Publishes our capacity on the gossipsub topic and keeps the table of what
 * other peers advertise. Adverts are signed by gossipsub (StrictSign), so the
 * message's signer is the advertising peer; a validator drops anything that
 * does not decode, before gossipsub forwards it.
 *
 * Emits `change` whenever the table changes, and `published` (detail: the
 * advert) whenever we publish ours.
 */
export class CapacityService extends EventTarget {
  private readonly components: CapacityComponents
  private readonly intervalMs: number
  private readonly table = new Map<string, PeerCapacity>()
  /** Peers we have heard any advert from: a new one makes us re-publish, so joiners learn of us at once. */
  private readonly heard = new Set<string>()
  private local: LocalAdvert | undefined
  private seq = Date.now()
  private timer: ReturnType<typeof setTimeout> | undefined
  private readonly minIntervalMs: number
  private publishTimer?: ReturnType<typeof setTimeout>
  private lastPublishAt = 0

  constructor (components: CapacityComponents, init: CapacityInit = {}) {
    super()
    this.components = components
    this.intervalMs = init.intervalMs ?? ADVERT_INTERVAL_MS
    this.minIntervalMs = init.minIntervalMs ?? ADVERT_MIN_INTERVAL_MS
  }

  start (): void {
    const { pubsub } = this.components
    pubsub.topicValidators.set(CAPACITY_TOPIC, this.validate)
    pubsub.addEventListener('message', this.onMessage)
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    pubsub.subscribe(CAPACITY_TOPIC)
    this.components.events.addEventListener('peer:disconnect', this.onDisconnect)
    this.schedule()
  }

  /**
   * How much longer than in a 4-peer mesh we wait between adverts:
   * N / (2 log2 N) for N peers heard of. Every peer hears every advert, so a
   * fixed interval would make each peer's gossip traffic grow with N; with
   * this, it grows with log N. Free-slot changes are throttled by the same
   * factor, and requesters learn the rest from `busy` answers.
   */
  private stretch (): number {
    const peers = this.table.size + 1
    return Math.max(1, peers / (2 * Math.log2(Math.max(peers, 2))))
  }

  private schedule (): void {
    this.timer = setTimeout(() => {
      this.prune()
      this.publish()
      this.schedule()
    }, this.intervalMs * this.stretch())
  }

  stop (): void {
    const { pubsub } = this.components
    clearTimeout(this.timer)
    clearTimeout(this.publishTimer)
    this.publishTimer = undefined
    pubsub.removeEventListener('message', this.onMessage)
    pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    pubsub.topicValidators.delete(CAPACITY_TOPIC)
    pubsub.unsubscribe(CAPACITY_TOPIC)
    this.components.events.removeEventListener('peer:disconnect', this.onDisconnect)
    this.table.clear()
  }

  /**
   * Sets what we advertise; undefined stops advertising (peers forget us
   * after the TTL). Published at once: starting or stopping to contribute is
   * news, unlike the free-slot changes the throttle folds together.
   */
  setLocal (local: LocalAdvert | undefined): void {
    this.local = local
    clearTimeout(this.publishTimer)
    this.publishTimer = undefined
    this.publish()
  }

  /**
   * Re-publishes our advert soon: at once if the last one is older than
   * `minIntervalMs`, else when it is, with every change in between folded
   * into that one message. A busy worker's free slots change twice per job;
   * an advert per change would cost more than the jobs (each one is signed,
   * and verified at every hop).
   */
  publishSoon (): void {
    if (this.publishTimer != null) {
      return
    }
    const wait = Math.max(0, this.lastPublishAt + this.minIntervalMs * this.stretch() - Date.now())
    this.publishTimer = setTimeout(() => {
      this.publishTimer = undefined
      this.publish()
    }, wait)
  }

  /**
   * Tells the topic we joined, with a zero-slot advert, once some peer is
   * there to hear it. Contributors that hear a new peer re-publish, so a
   * joining requester learns their capacity within a heartbeat rather than
   * an advert interval.
   */
  async announce (advert: AdvertContent, signal: AbortSignal): Promise<void> {
    const { pubsub } = this.components
    while (pubsub.getSubscribers(CAPACITY_TOPIC).length === 0) {
      await new Promise(resolve => setTimeout(resolve, 50))
      if (signal.aborted) {
        return
      }
    }
    if (this.local?.() == null) {
      this.publishAdvert({ ...advert, slots: { total: 0, free: 0 } })
    }
  }

  /** Remote peers with a live advert, newest first. */
  peers (): PeerCapacity[] {
    this.prune()
    return [...this.table.values()].sort((a, b) => b.seenAt - a.seenAt)
  }

  get (peerId: string): PeerCapacity | undefined {
    return this.table.get(peerId)
  }

  /** Forgets a peer now, e.g. when it disconnected: no job should be sent there until it advertises again. */
  forget (peerId: string): void {
    if (this.table.delete(peerId)) {
      this.dispatchEvent(new Event('change'))
    }
  }

  private publish (): void {
    const advert = this.local?.()
    if (advert != null) {
      this.publishAdvert(advert)
    }
  }

  private publishAdvert (advert: AdvertContent): void {
    this.lastPublishAt = Date.now()
    const published = { ...advert, seq: ++this.seq, intervalMs: Math.round(this.intervalMs * this.stretch()) }
    this.components.pubsub.publish(CAPACITY_TOPIC, encodeAdvert(published)).catch(() => {
      // no subscribed peer yet: the next interval or subscription change publishes again
    })
    this.dispatchEvent(new CustomEvent('published', { detail: published }))
  }

  private readonly validate = (_from: PeerId, message: Message): TopicValidatorResult => {
    if (message.type !== 'signed') {
      return TopicValidatorResult.Reject
    }
    try {
      decodeAdvert(message.data)
      return TopicValidatorResult.Accept
    } catch {
      return TopicValidatorResult.Reject
    }
  }

  private readonly onMessage = (event: CustomEvent<Message>): void => {
    const message = event.detail
    if (message.topic !== CAPACITY_TOPIC || message.type !== 'signed') {
      return
    }
    const peerId = message.from.toString()
    if (peerId === this.components.peerId.toString()) {
      return
    }
    let advert: CapacityAdvert
    try {
      advert = decodeAdvert(message.data)
    } catch {
      return // the validator already rejected it; this only guards direct deliveries
    }
    if (!this.heard.has(peerId)) {
      if (this.heard.size > 10_000) {
        this.heard.clear()
      }
      this.heard.add(peerId)
      this.publishSoon()
    }
    const known = this.table.get(peerId)
    if (known != null && known.advert.seq >= advert.seq) {
      return
    }
    if (advert.slots.total === 0) {
      this.forget(peerId)
      return
    }
    this.table.set(peerId, { peerId, advert, seenAt: Date.now() })
    this.dispatchEvent(new Event('change'))
  }

  /** No job should go to a peer we lost until it advertises again. */
  private readonly onDisconnect = (event: CustomEvent<PeerId>): void => {
    this.forget(event.detail.toString())
  }

  /** A peer joined the topic: tell it about us now rather than at the next interval. */
  private readonly onSubscriptionChange = (): void => {
    this.publishSoon()
  }

  private prune (): void {
    const now = Date.now()
    let changed = false
    for (const [peerId, entry] of this.table) {
      // three missed adverts, by the interval the peer itself announced
      if (now - entry.seenAt > ADVERT_MISSES_TO_FORGET * entry.advert.intervalMs) {
        this.table.delete(peerId)
        changed = true
      }
    }
    if (changed) {
      this.dispatchEvent(new Event('change'))
    }
  }
}

export function capacityService (init: CapacityInit = {}): (components: CapacityComponents) => CapacityService {
  return components => new CapacityService(components, init)
}
