import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub'
import { decodeAdvert, encodeAdvert, type CapacityAdvert } from '../wire/advert.ts'
import { ADVERT_INTERVAL_MS, ADVERT_MIN_INTERVAL_MS, ADVERT_MISSES_TO_FORGET, CAPACITY_TOPIC, MAX_ADVERT_STRETCH, MAX_CAPACITY_PEERS, MAX_RATE_TRACKED, ADVERT_RATE_WINDOW_MS, MAX_ADVERTS_PER_WINDOW, STRETCH_MIN_AGE_MS } from '../constants.ts'
import { encodeCbor } from '../wire/cbor.ts'
import { equals as equalBytes } from 'uint8arrays/equals'
import type { Libp2pEvents, PeerId, TypedEventTarget } from '@libp2p/interface'

export interface CapacityComponents {
  pubsub: GossipSub
  peerId: PeerId
  /** libp2p's events: a peer that disconnects is forgotten at once. */
  events: TypedEventTarget<Libp2pEvents>
  /** Whether we know a peer (connected to it, or have a record of it): such peers keep their place in a full table. */
  knows?: (peerId: string) => boolean
}

export interface CapacityInit {
  /** Re-publish interval in a small mesh; it stretches as the mesh grows. @default ADVERT_INTERVAL_MS */
  intervalMs?: number
  /** Adverts are published at most this often. @default ADVERT_MIN_INTERVAL_MS */
  minIntervalMs?: number
  /** Only peers heard of for this long stretch our interval (simulations of a long-formed mesh shorten it). @default STRETCH_MIN_AGE_MS */
  stretchMinAgeMs?: number
}

/** A remote peer's latest advert. */
export interface PeerCapacity {
  peerId: string
  advert: CapacityAdvert
  /** When we received it (ms since epoch, local clock). */
  seenAt: number
  /** When we first heard of this peer (ms since epoch, local clock). */
  firstSeenAt: number
}

/** What a peer says in its advert; the service adds `seq` and `intervalMs` when it publishes. */
export type AdvertContent = Omit<CapacityAdvert, 'seq' | 'intervalMs'>

/** Builds our own advert, or undefined when we do not contribute. */
export type LocalAdvert = () => AdvertContent | undefined

/**
 * Adverts decoded, by the message's bytes: gossipsub hands the same message
 * to the validator and then to the `message` listener, which need not decode
 * it again. Read-only: tables share them.
 */
const decoded = new WeakMap<Uint8Array, CapacityAdvert>()

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
  /** The table, newest first, until it changes. */
  private sorted?: PeerCapacity[]
  /** Peers we have heard any advert from: a new one makes us re-publish, so joiners learn of us at once. */
  private readonly heard = new Set<string>()
  private local: LocalAdvert | undefined
  private seq = Date.now()
  private timer: ReturnType<typeof setTimeout> | undefined
  private readonly minIntervalMs: number
  private readonly stretchMinAgeMs: number
  private publishTimer?: ReturnType<typeof setTimeout>
  /** Whether the pending re-publish answers a newcomer (sent even if unchanged). */
  private forceNext = false
  /** What our last advert said (without its seq and interval). */
  private lastPublished: Uint8Array = new Uint8Array(0)
  private lastPublishAt = 0
  /** Each publisher's last advert that passed validation: when, and its sequence number. */
  private readonly lastAccepted = new Map<string, { windowStart: number, count: number, seq: number }>()

  constructor (components: CapacityComponents, init: CapacityInit = {}) {
    super()
    this.components = components
    this.intervalMs = init.intervalMs ?? ADVERT_INTERVAL_MS
    this.minIntervalMs = init.minIntervalMs ?? ADVERT_MIN_INTERVAL_MS
    this.stretchMinAgeMs = init.stretchMinAgeMs ?? STRETCH_MIN_AGE_MS
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
   * N / (2 log2 N) for N peers heard of, at most MAX_ADVERT_STRETCH. Every peer hears every advert, so a
   * fixed interval would make each peer's gossip traffic grow with N; with
   * this, it grows with log N. Free-slot changes are throttled by the same
   * factor, and requesters learn the rest from `busy` answers.
   */
  private stretch (): number {
    // only peers that stayed a while count: a burst of fresh identities (a Sybil flood) must not silence us
    const now = Date.now()
    let settled = 1
    for (const entry of this.table.values()) {
      if (now - entry.firstSeenAt >= this.stretchMinAgeMs) {
        settled++
      }
    }
    return Math.min(MAX_ADVERT_STRETCH, Math.max(1, settled / (2 * Math.log2(Math.max(settled, 2)))))
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
    this.sorted = undefined
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
   * Re-publishes our advert soon if it changed: at once if the last one is
   * older than `minIntervalMs` × the stretch, else when it is, with every
   * change in between folded into that one message, and nothing sent if it
   * then says what the last one said. A busy worker's free slots change
   * twice per job and are mostly back where they were by then (its queue
   * refills the slot): an advert per change would cost more than the jobs
   * (each one is signed, and verified at every hop).
   */
  publishSoon (): void {
    this.soon(false)
  }

  /** A newcomer to tell about us: re-publishes soon (as `publishSoon`), changed or not. */
  private answerSoon (): void {
    this.soon(true)
  }

  private soon (force: boolean): void {
    this.forceNext ||= force
    if (this.publishTimer != null) {
      return
    }
    const wait = Math.max(0, this.lastPublishAt + this.minIntervalMs * this.stretch() - Date.now())
    this.publishTimer = setTimeout(() => {
      this.publishTimer = undefined
      const advert = this.local?.()
      if (advert != null && (this.forceNext || !equalBytes(encodeCbor(advert), this.lastPublished))) {
        this.publishAdvert(advert)
      }
      this.forceNext = false
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
    // sorted once per change of the table: a requester placing a wide map asks for every placement
    this.sorted ??= [...this.table.values()].sort((a, b) => b.seenAt - a.seenAt)
    return this.sorted.slice()
  }

  get (peerId: string): PeerCapacity | undefined {
    return this.table.get(peerId)
  }

  /** Forgets a peer now, e.g. when it disconnected: no job should be sent there until it advertises again. */
  forget (peerId: string): void {
    if (this.table.delete(peerId)) {
      this.sorted = undefined
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
    this.lastPublished = encodeCbor(advert)
    const published = { ...advert, seq: ++this.seq, intervalMs: Math.round(this.intervalMs * this.stretch()) }
    this.components.pubsub.publish(CAPACITY_TOPIC, encodeAdvert(published)).catch(() => {
      // no subscribed peer yet: the next interval or subscription change publishes again
    })
    this.dispatchEvent(new CustomEvent('published', { detail: published }))
  }

  /**
   * Runs on every advert before gossipsub forwards it, here and on every
   * relay: malformed ones are rejected (and count against the peer that
   * sent them), and one publisher's adverts beyond MAX_ADVERTS_PER_WINDOW
   * per ADVERT_RATE_WINDOW_MS, or replayed, are ignored (not forwarded), so a
   * flood from one identity dies at the first hop.
   */
  private readonly validate = (_from: PeerId, message: Message): TopicValidatorResult => {
    if (message.type !== 'signed') {
      return TopicValidatorResult.Reject
    }
    let advert: CapacityAdvert
    try {
      advert = this.decode(message.data)
    } catch {
      return TopicValidatorResult.Reject
    }
    const publisher = message.from.toString()
    const now = Date.now()
    const last = this.lastAccepted.get(publisher)
    // a burst is fine (joining announces and then starts contributing at once); a stream of adverts is not
    const window = last != null && now - last.windowStart < ADVERT_RATE_WINDOW_MS ? last : { windowStart: now, count: 0, seq: last?.seq ?? -1 }
    if (advert.seq <= window.seq || window.count >= MAX_ADVERTS_PER_WINDOW) {
      return TopicValidatorResult.Ignore
    }
    this.lastAccepted.delete(publisher)
    this.lastAccepted.set(publisher, { windowStart: window.windowStart, count: window.count + 1, seq: advert.seq })
    if (this.lastAccepted.size > MAX_RATE_TRACKED) {
      this.lastAccepted.delete(this.lastAccepted.keys().next().value as string)
    }
    return TopicValidatorResult.Accept
  }

  private decode (data: Uint8Array): CapacityAdvert {
    let advert = decoded.get(data)
    if (advert == null) {
      advert = decodeAdvert(data)
      decoded.set(data, advert)
    }
    return advert
  }

  /**
   * Whether a new peer may enter a full table: it may push out the stalest
   * stranger (a peer we are not connected to and have no record of), but
   * only if it is not a stranger itself, or the stalest one has gone quiet.
   */
  private makeRoom (peerId: string): boolean {
    if (this.table.size < MAX_CAPACITY_PEERS) {
      return true
    }
    const isKnown = (id: string): boolean => this.components.knows?.(id) === true
    let stalest: PeerCapacity | undefined
    for (const entry of this.table.values()) {
      if (!isKnown(entry.peerId) && (stalest == null || entry.seenAt < stalest.seenAt)) {
        stalest = entry
      }
    }
    if (stalest == null || (!isKnown(peerId) && Date.now() - stalest.seenAt < stalest.advert.intervalMs)) {
      return false
    }
    this.table.delete(stalest.peerId)
    this.sorted = undefined
    return true
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
      advert = this.decode(message.data)
    } catch {
      return // the validator already rejected it; this only guards direct deliveries
    }
    if (!this.heard.has(peerId)) {
      if (this.heard.size > 10_000) {
        this.heard.clear()
      }
      this.heard.add(peerId)
      this.answerSoon()
    }
    const known = this.table.get(peerId)
    if (known != null && known.advert.seq >= advert.seq) {
      return
    }
    // no slots: it stopped contributing, unless it lends storage alone
    if (advert.slots.total === 0 && advert.storageBytes === 0) {
      this.forget(peerId)
      return
    }
    if (known == null && !this.makeRoom(peerId)) {
      return
    }
    this.table.set(peerId, { peerId, advert, seenAt: Date.now(), firstSeenAt: known?.firstSeenAt ?? Date.now() })
    this.sorted = undefined
    this.dispatchEvent(new Event('change'))
  }

  /** No job should go to a peer we lost until it advertises again. */
  private readonly onDisconnect = (event: CustomEvent<PeerId>): void => {
    this.forget(event.detail.toString())
  }

  /** A peer joined the topic: tell it about us now rather than at the next interval. */
  private readonly onSubscriptionChange = (): void => {
    this.answerSoon()
  }

  private prune (): void {
    const now = Date.now()
    let changed = false
    for (const [peerId, entry] of this.table) {
      // three missed adverts, by the interval the peer itself announced
      if (now - entry.seenAt > ADVERT_MISSES_TO_FORGET * entry.advert.intervalMs) {
        this.table.delete(peerId)
        this.sorted = undefined
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
