import { lpStream } from '@libp2p/utils'
import { Key, type Datastore } from 'interface-datastore'
import { TypedEventEmitter } from 'main-event'
import * as dagPb from '@ipld/dag-pb'
import { equals } from 'uint8arrays/equals'
import { CHALLENGE_TIMEOUT_MS, FETCH_TIMEOUT_MS, MAX_REPLICAS, MAX_STORE_MESSAGE_BYTES, OWNER_SHARE, PIN_FETCH_MS_PER_MIB, STORAGE_CHECK_INTERVAL_MS, STORE_PROTOCOL } from '../constants.ts'
import { ContentMismatchError, StorageFullError, WasmeshError, errorToWire } from '../errors.ts'
import { challengeProof, checkPinOrder, decodePinRecord, decodeStoreRequest, encodePinRecord, encodeSigned, encodeStoreMessage, signStorageReceipt, validatePinOrder, validateStorageReceipt, type PinOrder, type PinRecord, type Signed, type StorageReceipt, type StoreRequest, type StoreResponse } from '../wire/storage.ts'
import { decodeCbor } from '../wire/cbor.ts'
import { askStorePeer } from './rpc.ts'
import { rankHolders } from './placement.ts'
import type { CapacityService } from '../net/capacity.ts'
import type { Reputation, StorageEvidence } from '../job/reputation.ts'
import type { ContentStore } from '../store/content.ts'
import type { Signer } from '../wire/receipt.ts'
import type { TestFault } from '../worker/test-faults.ts'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

const PIN_PREFIX = '/wasmesh/pins/'

export interface StorageHolderComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol' | 'peerStore' | 'peerId'>
  signer: Signer
  content: ContentStore
  datastore: Datastore
  capacity: Pick<CapacityService, 'get' | 'peers' | 'publishSoon'>
  reputation: Pick<Reputation, 'score' | 'failed' | 'keepStorageEvidence'>
}

export interface StorageHolderInit {
  /** Bytes of storage we offer others. @default 0 */
  storageBytes?: number
  /** Our storage may vanish without notice (a browser tab): said in the advert. @default false */
  storageVolatile?: boolean
  /**
   * Mean time between two rounds of upkeep: collect expired pins, check the
   * other holders of one pin, and repair its holder set. A lost holder is
   * noticed within about two rounds. @default STORAGE_CHECK_INTERVAL_MS
   */
  storageCheckIntervalMs?: number
  /** Test aid, never for production: `drop-stored` deletes what it pinned, keeping the record (see TestFault). */
  fault?: TestFault
}

/** What we hold for others, for display and benchmarks. */
export interface StorageStats {
  offeredBytes: number
  usedBytes: number
  pins: number
  /** Checks of us we answered. */
  challengesAnswered: number
  /** Bytes of check messages we sent: our challenges and our answers to others'. */
  checkBytesSent: number
  /** Checks we made of other holders, and how many failed. */
  challengesSent: number
  challengesFailed: number
  /** Replicas we placed to repair a holder set. */
  repairs: number
}

export interface StorageHolderEvents {
  /** We pinned a CID for someone (detail: the CID, its size and owner). */
  'pinned': CustomEvent<{ cid: string, size: number, owner: string }>
  /** We placed new replicas of a CID (detail: the CID and the new holders). */
  'repaired': CustomEvent<{ cid: string, placed: string[] }>
  /** A holder failed a check (detail: the CID, the holder, why). */
  'check:failed': CustomEvent<{ cid: string, holder: string, reason: string }>
}

interface Pin {
  record: PinRecord
  order: PinOrder
  receipt: StorageReceipt
}

type Check = { ok: true } | { ok: false, reason: string, reachable: boolean }

/**
 * The holder side of `/wasmesh/store/1.0.0`: pins content for others within
 * the space we offer, signs storage receipts, and keeps each pinned CID's
 * holder set at its replica count without the uploader: every round it
 * checks the other holders of a pin (a random block, from that holder
 * alone), and the first live holder by peer id replaces any that is lost or
 * failing. Expired pins are collected.
 */
export class StorageHolder extends TypedEventEmitter<StorageHolderEvents> {
  private readonly components: StorageHolderComponents
  private offered: number
  private readonly volatile: boolean
  private readonly intervalMs: number
  private readonly fault?: TestFault
  private readonly pins = new Map<string, Pin>()
  /** Bytes promised to pins being fetched: counted as used, so two pins at once cannot overfill us. */
  private reserved = 0
  private timer?: ReturnType<typeof setTimeout>
  private running?: AbortController
  private readonly stats = { challengesAnswered: 0, checkBytesSent: 0, challengesSent: 0, challengesFailed: 0, repairs: 0 }

  constructor (components: StorageHolderComponents, init: StorageHolderInit = {}) {
    super()
    this.components = components
    this.offered = init.storageBytes ?? 0
    this.volatile = init.storageVolatile ?? false
    this.intervalMs = init.storageCheckIntervalMs ?? STORAGE_CHECK_INTERVAL_MS
    this.fault = init.fault
  }

  private get self (): string {
    return this.components.libp2p.peerId.toString()
  }

  async start (): Promise<void> {
    this.running = new AbortController()
    for await (const { value } of this.components.datastore.query({ prefix: PIN_PREFIX })) {
      try {
        const record = decodePinRecord(value)
        this.pins.set(this.pinOf(record).order.cid.toString(), this.pinOf(record))
      } catch {
        // a corrupt record is dropped, not fatal: its blocks are collected with nothing pointing at them
      }
    }
    await this.components.libp2p.handle(STORE_PROTOCOL, (stream, connection) => {
      void this.serve(stream, connection)
    }, { maxInboundStreams: 8 })
    this.schedule()
  }

  async stop (): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    this.running?.abort()
    await this.components.libp2p.unhandle(STORE_PROTOCOL)
    this.pins.clear()
  }

  /** Changes the space we offer; pins already held stay, even beyond a smaller offer. */
  setOffer (bytes: number): void {
    this.offered = Math.max(0, Math.floor(bytes))
    this.components.capacity.publishSoon()
  }

  get offeredBytes (): number {
    return this.offered
  }

  get usedBytes (): number {
    let used = this.reserved
    for (const pin of this.pins.values()) {
      used += pin.order.size
    }
    return used
  }

  /** What our advert says about storage: nothing when we offer none. */
  advertFields (): { storageBytes: number, storageFree?: number, storageVolatile?: boolean } {
    if (this.offered === 0) {
      return { storageBytes: 0 }
    }
    return { storageBytes: this.offered, storageFree: Math.max(0, this.offered - this.usedBytes), ...(this.volatile ? { storageVolatile: true } : {}) }
  }

  storageStats (): StorageStats {
    return { offeredBytes: this.offered, usedBytes: this.usedBytes, pins: this.pins.size, ...this.stats }
  }

  /** The pin record we keep for a CID, if we hold it. */
  record (cid: CID): PinRecord | undefined {
    return this.pins.get(cid.toString())?.record
  }

  private pinOf (record: PinRecord): Pin {
    return { record, order: validatePinOrder(decodeCbor(record.order.payload, 'pin order')), receipt: validateStorageReceipt(decodeCbor(record.receipt.payload, 'storage receipt')) }
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_STORE_MESSAGE_BYTES })
    const signal = AbortSignal.any([this.running?.signal ?? new AbortController().signal, AbortSignal.timeout(10 * 60_000)])
    let answer: StoreResponse
    try {
      const request = decodeStoreRequest((await lp.read({ signal })).subarray())
      answer = await this.answer(request, connection.remotePeer.toString(), signal)
    } catch (err) {
      answer = { type: 'error', error: errorToWire(err) }
    }
    try {
      await lp.write(encodeStoreMessage(answer), { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  /** Answers a request of our own, as a remote holder would: a peer that holds a pin and renews or surveys it asks itself too. */
  async answerLocal (request: StoreRequest, signal: AbortSignal): Promise<StoreResponse> {
    try {
      return await this.answer(request, this.self, signal)
    } catch (err) {
      return { type: 'error', error: errorToWire(err) }
    }
  }

  private async answer (request: StoreRequest, from: string, signal: AbortSignal): Promise<StoreResponse> {
    switch (request.type) {
      case 'pin':
        return { type: 'pinned', receipt: await this.pin(request.order, request.renewal, request.holders, signal) }
      case 'status': {
        const pin = this.pins.get(request.cid.toString())
        if (pin == null || pin.receipt.until <= Date.now()) {
          return { type: 'absent' }
        }
        return { type: 'holding', receipt: pin.record.receipt, holders: pin.record.holders, order: pin.record.order, ...(pin.record.renewal != null ? { renewal: pin.record.renewal } : {}) }
      }
      case 'challenge': {
        const bytes = this.pins.has(request.cid.toString()) ? await this.components.content.localBlock(request.block, signal) : undefined
        if (bytes == null) {
          return { type: 'absent' }
        }
        const answer: StoreResponse = { type: 'proof', hash: await challengeProof(request.nonce, bytes) }
        this.stats.challengesAnswered++
        this.stats.checkBytesSent += encodeStoreMessage(answer).byteLength
        return answer
      }
      case 'holders': {
        const pin = this.pins.get(request.cid.toString())
        // only the owner or a fellow holder may change who holds a pin
        if (pin != null && (from === pin.order.owner || pin.record.holders.includes(from))) {
          await this.save({ ...pin.record, holders: withSelf(request.holders, this.self) }, signal)
        }
        return { type: 'ok' }
      }
      case 'renew':
        return { type: 'pinned', receipt: await this.renew(request.order, signal) }
    }
  }

  /**
   * Fetches every block of the ordered CID (Helia checks each against its
   * hash), counts the bytes against the declared size and our offer, keeps
   * it, and signs a receipt. Refuses with StorageFullError when it would
   * not fit our offer or the owner's fair share of it.
   */
  private async pin (orderBytes: Signed, renewal: Signed | undefined, holders: string[], signal: AbortSignal): Promise<Signed> {
    const { order, until } = await checkPinOrder(orderBytes, renewal, Date.now())
    const key = order.cid.toString()
    const known = this.pins.get(key)
    if (known != null) {
      await this.save({ ...known.record, holders: withSelf([...known.record.holders, ...holders], this.self) }, signal)
      return known.record.receipt
    }
    this.admit(order)
    this.reserved += order.size
    try {
      const fetchSignal = AbortSignal.any([signal, AbortSignal.timeout(FETCH_TIMEOUT_MS + Math.ceil(order.size / 1024 / 1024) * PIN_FETCH_MS_PER_MIB)])
      let bytes = 0
      for await (const block of this.components.content.blocks(order.cid, { signal: fetchSignal })) {
        bytes += block.bytes.byteLength
        if (bytes > order.size) {
          throw new ContentMismatchError(`${key} holds more than the ${order.size} bytes its order declares`)
        }
      }
      if (bytes !== order.size) {
        throw new ContentMismatchError(`${key} holds ${bytes} bytes, not the ${order.size} its order declares`)
      }
      const receipt = await signStorageReceipt({ v: 1, holder: this.self, cid: order.cid, size: order.size, until, owner: order.owner, at: Date.now() }, this.components.signer)
      await this.save({ v: 1, order: orderBytes, ...(renewal != null ? { renewal } : {}), receipt, holders: withSelf(holders, this.self) }, signal)
      this.safeDispatch('pinned', { cid: key, size: order.size, owner: order.owner })
      if (this.fault === 'drop-stored') {
        // the test aid: lose the blocks behind everyone's back, and go on claiming them
        setTimeout(() => { void this.components.content.remove(order.cid).catch(() => {}) }, 200)
      }
      return receipt
    } finally {
      this.reserved -= order.size
      this.components.capacity.publishSoon()
    }
  }

  /** Throws StorageFullError when the order does not fit our offer, or the owner's share of it. */
  private admit (order: PinOrder): void {
    const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`
    if (this.offered === 0) {
      throw new StorageFullError(`${this.self} offers no storage`)
    }
    const used = this.usedBytes
    if (used + order.size > this.offered) {
      throw new StorageFullError(`${this.self} offers ${mib(this.offered)} with ${mib(used)} used: ${mib(order.size)} for ${order.cid.toString()} does not fit`)
    }
    let owners = 0
    for (const pin of this.pins.values()) {
      owners += pin.order.owner === order.owner ? pin.order.size : 0
    }
    const share = Math.floor(this.offered * OWNER_SHARE)
    if (owners + order.size > share) {
      throw new StorageFullError(`${this.self} gives one owner at most ${mib(share)} of its ${mib(this.offered)}; ${order.owner} holds ${mib(owners)} here and asks ${mib(order.size)} more`)
    }
  }

  private async renew (orderBytes: Signed, signal: AbortSignal): Promise<Signed> {
    const later = validatePinOrder(decodeCbor(orderBytes.payload, 'pin order'))
    const pin = this.pins.get(later.cid.toString())
    if (pin == null) {
      throw new WasmeshError(`${this.self} does not hold ${later.cid.toString()}`)
    }
    // the owner's own renewal replaces the order; anyone else's is kept beside it, and checked against it
    const ownRenewal = later.signer === pin.order.owner && later.owner === pin.order.owner
    const order = ownRenewal ? orderBytes : pin.record.order
    const renewal = ownRenewal ? pin.record.renewal : orderBytes
    const { until } = await checkPinOrder(order, renewal, Date.now())
    const receipt = await signStorageReceipt({ ...pin.receipt, until, at: Date.now() }, this.components.signer)
    await this.save({ ...pin.record, order, ...(renewal != null ? { renewal } : {}), receipt }, signal)
    return receipt
  }

  private async save (record: PinRecord, signal?: AbortSignal): Promise<void> {
    const pin = this.pinOf(record)
    await this.components.datastore.put(new Key(`${PIN_PREFIX}${pin.order.cid.toString()}`), encodePinRecord(record), { signal })
    this.pins.set(pin.order.cid.toString(), pin)
  }

  private schedule (): void {
    // random times, so a holder cannot predict a check and fetch the content just before it
    this.timer = setTimeout(() => {
      void this.upkeep().finally(() => {
        if (this.timer != null) {
          this.schedule()
        }
      })
    }, this.intervalMs * (0.5 + Math.random()))
  }

  /** One round: collect expired pins, then check and repair one pin's holder set. */
  async upkeep (): Promise<void> {
    const signal = this.running?.signal
    if (signal == null || signal.aborted) {
      return
    }
    try {
      await this.collect(signal)
      const live = [...this.pins.values()]
      const pin = live[Math.floor(Math.random() * live.length)]
      if (pin != null) {
        await this.tend(pin, signal)
      }
    } catch {
      // a failed round is retried at the next; the peer stays up
    }
  }

  /** Deletes expired pins and their blocks, keeping blocks another live pin shares. */
  async collect (signal: AbortSignal): Promise<void> {
    const now = Date.now()
    const expired = [...this.pins.values()].filter(pin => pin.receipt.until <= now)
    if (expired.length === 0) {
      return
    }
    for (const pin of expired) {
      this.pins.delete(pin.order.cid.toString())
      await this.components.datastore.delete(new Key(`${PIN_PREFIX}${pin.order.cid.toString()}`), { signal })
    }
    const keep = new Set<string>()
    for (const pin of this.pins.values()) {
      try {
        for await (const block of this.components.content.blocks(pin.order.cid, { signal, localOnly: true })) {
          keep.add(block.cid.toString())
        }
      } catch {
        // a pin missing blocks keeps what it has
      }
    }
    for (const pin of expired) {
      await this.components.content.remove(pin.order.cid, signal, keep)
    }
    this.components.capacity.publishSoon()
  }

  /**
   * Checks every other holder of the pin, and if some failed, or there are
   * fewer holders than replicas, the first live holder by peer id places new
   * replicas and tells the rest. Every live holder reaches the same leader
   * unless their views differ, which at worst adds a replica.
   */
  private async tend (pin: Pin, signal: AbortSignal): Promise<void> {
    const cid = pin.order.cid
    const others = pin.record.holders.filter(id => id !== this.self)
    const results = await Promise.all(others.map(async holder => ({ holder, check: await this.challenge(pin, holder, signal) })))
    const failed = new Set<string>()
    for (const { holder, check } of results) {
      if (!check.ok) {
        failed.add(holder)
        await this.blame(pin, holder, check, signal)
      }
    }
    const alive = pin.record.holders.filter(id => !failed.has(id))
    if (!alive.includes(this.self)) {
      alive.push(this.self)
    }
    if (failed.size > 0) {
      await this.save({ ...pin.record, holders: alive }, signal)
    }
    const missing = Math.min(MAX_REPLICAS, pin.order.replicas) - alive.length
    if (missing <= 0 || [...alive].sort()[0] !== this.self) {
      return
    }
    const exclude = new Set([...pin.record.holders, ...failed, this.self])
    const candidates = rankHolders(this.components.capacity.peers(), { size: pin.order.size, exclude, score: id => this.components.reputation.score(id) })
    const placed: string[] = []
    for (const candidate of candidates) {
      if (placed.length >= missing) {
        break
      }
      try {
        const answer = await askStorePeer(this.components, candidate, { type: 'pin', order: pin.record.order, ...(pin.record.renewal != null ? { renewal: pin.record.renewal } : {}), holders: [...alive, ...placed, candidate] }, AbortSignal.any([signal, AbortSignal.timeout(FETCH_TIMEOUT_MS + Math.ceil(pin.order.size / 1024 / 1024) * PIN_FETCH_MS_PER_MIB + CHALLENGE_TIMEOUT_MS)]))
        if (answer.type === 'pinned') {
          placed.push(candidate)
        }
      } catch {
        // refused or unreachable: the next candidate
      }
    }
    if (placed.length === 0) {
      return
    }
    const holders = [...alive, ...placed]
    this.stats.repairs += placed.length
    await this.save({ ...(this.pins.get(cid.toString())?.record ?? pin.record), holders }, signal)
    await Promise.all(holders.filter(id => id !== this.self).map(async id => {
      await askStorePeer(this.components, id, { type: 'holders', cid, holders }, AbortSignal.any([signal, AbortSignal.timeout(CHALLENGE_TIMEOUT_MS)])).catch(() => {})
    }))
    this.safeDispatch('repaired', { cid: cid.toString(), placed })
  }

  /**
   * Asks one holder, and only it, to prove it has a random block of the pin
   * we hold too: the hash of a fresh nonce and the block, which we compute
   * from our own copy. 32 bytes answer it, and no answer can be made before
   * the nonce is known.
   */
  private async challenge (pin: Pin, holder: string, signal: AbortSignal): Promise<Check> {
    const block = await this.randomBlock(pin.order.cid, signal)
    const bytes = block == null ? undefined : await this.components.content.localBlock(block, signal)
    if (block == null || bytes == null) {
      return { ok: true } // we lost it ourselves: someone else will notice, and we cannot judge others
    }
    const nonce = crypto.getRandomValues(new Uint8Array(32))
    this.stats.challengesSent++
    let answer: StoreResponse
    try {
      const request: StoreRequest = { type: 'challenge', cid: pin.order.cid, block, nonce }
      this.stats.checkBytesSent += encodeStoreMessage(request).byteLength
      answer = await askStorePeer(this.components, holder, request, AbortSignal.any([signal, AbortSignal.timeout(CHALLENGE_TIMEOUT_MS)]))
    } catch (err) {
      return { ok: false, reason: `unreachable: ${(err as Error).message}`, reachable: false }
    }
    if (answer.type !== 'proof') {
      return { ok: false, reason: answer.type === 'error' ? `${answer.error.name}: ${answer.error.message}` : `answered ${answer.type} for block ${block.toString()}`, reachable: true }
    }
    if (!equals(answer.hash, await challengeProof(nonce, bytes))) {
      return { ok: false, reason: `sent a wrong proof for block ${block.toString()}`, reachable: true }
    }
    return { ok: true }
  }

  /** A failed check lowers the holder's score, and a reachable holder's own receipt for the CID is kept as evidence. */
  private async blame (pin: Pin, holder: string, check: Extract<Check, { ok: false }>, signal: AbortSignal): Promise<void> {
    this.stats.challengesFailed++
    this.components.reputation.failed(holder, 'failure')
    let receipt: Uint8Array | undefined
    if (check.reachable) {
      const status = await askStorePeer(this.components, holder, { type: 'status', cid: pin.order.cid }, AbortSignal.any([signal, AbortSignal.timeout(CHALLENGE_TIMEOUT_MS)])).catch(() => undefined)
      if (status?.type === 'holding') {
        receipt = encodeSigned(status.receipt)
      }
    }
    const evidence: StorageEvidence = { kind: 'storage', cid: pin.order.cid.toString(), holder, reason: check.reason, at: Date.now(), ...(receipt != null ? { receipt } : {}) }
    await this.components.reputation.keepStorageEvidence(evidence)
    this.safeDispatch('check:failed', { cid: evidence.cid, holder, reason: check.reason })
  }

  /** A random block of the DAG, from our own copy: a random walk down from the root. */
  private async randomBlock (cid: CID, signal: AbortSignal): Promise<CID | undefined> {
    let current = cid
    for (let depth = 0; depth < 64; depth++) {
      if (current.code !== dagPb.code) {
        return current
      }
      const bytes = await this.components.content.localBlock(current, signal)
      if (bytes == null) {
        return undefined
      }
      const links = dagPb.decode(bytes).Links
      // stop at an inner node now and then, so those are checked too
      if (links.length === 0 || Math.random() < 1 / (links.length + 1)) {
        return current
      }
      current = (links[Math.floor(Math.random() * links.length)] as dagPb.PBLink).Hash
    }
    return current
  }

  private safeDispatch<K extends keyof StorageHolderEvents>(type: K, detail: StorageHolderEvents[K] extends CustomEvent<infer D> ? D : never): void {
    try {
      this.dispatchEvent(new CustomEvent(type, { detail }))
    } catch {
      // a listener's bug must not stop upkeep
    }
  }
}

function withSelf (holders: readonly string[], self: string): string[] {
  return [...new Set([...holders, self])].slice(0, 4 * MAX_REPLICAS)
}

export function storageHolder (init: StorageHolderInit = {}): (components: StorageHolderComponents) => StorageHolder {
  return components => new StorageHolder(components, init)
}
