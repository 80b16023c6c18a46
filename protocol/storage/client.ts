import { CID } from 'multiformats/cid'
import { ADVERT_SETTLE_MS, CHALLENGE_TIMEOUT_MS, DEFAULT_PIN_TTL_MS, FETCH_TIMEOUT_MS, MAX_REPLICAS, PIN_FETCH_MS_PER_MIB, STORAGE_PEER_WAIT_MS } from '../constants.ts'
import { ContentFetchError, MalformedMessageError, NotEnoughHoldersError, StorageFullError, errorFromWire } from '../errors.ts'
import { signPinOrder, verifyPinOrder, verifyStorageReceipt, type Signed, type StorageReceipt, type StoreRequest, type StoreResponse } from '../wire/storage.ts'
import { askStorePeer } from './rpc.ts'
import { rankHolders } from './placement.ts'
import type { CapacityService, PeerCapacity } from '../net/capacity.ts'
import type { Reputation } from '../job/reputation.ts'
import type { StorageHolder } from './holder.ts'
import type { ContentStore } from '../store/content.ts'
import type { Signer } from '../wire/receipt.ts'
import type { TreeEntry } from '../runtime/executor.ts'
import type { Libp2p } from '@libp2p/interface'

export interface StoreOptions {
  /** Distinct storage peers to keep it on; they keep that count up between them. @default 3 */
  replicas?: number
  /** How long the holders keep it, in ms; renew before it runs out. @default DEFAULT_PIN_TTL_MS (30 days) */
  ttl?: number
  /** Peer ids allowed to renew the pin besides us. */
  renewers?: string[]
  /** Ask these storage peers, in this order, rather than choosing from adverts. */
  on?: string[]
  /** How long to wait for enough storage adverts after joining. @default STORAGE_PEER_WAIT_MS */
  waitMs?: number
  signal?: AbortSignal
}

/** One holder and its signed promise. */
export interface Holding {
  peerId: string
  receipt: StorageReceipt
  /** The signed receipt, for anyone to check with `verifyStorageReceipt`. */
  signed: Signed
}

export interface StoreResult {
  cid: CID
  /** Bytes of all its blocks. */
  size: number
  until: number
  holders: Holding[]
}

export interface HoldersOptions {
  signal?: AbortSignal
  /** How long to wait for storage adverts after joining. @default STORAGE_PEER_WAIT_MS */
  waitMs?: number
}

export interface StorageClientComponents {
  libp2p: Pick<Libp2p, 'dialProtocol' | 'peerStore' | 'peerId'>
  signer: Signer
  content: ContentStore
  capacity: Pick<CapacityService, 'get' | 'peers' | 'addEventListener' | 'removeEventListener'>
  reputation: Pick<Reputation, 'score'>
  /** Our own holder: asked directly when we hold a pin ourselves. */
  holder: Pick<StorageHolder, 'answerLocal' | 'record'>
}

/**
 * The uploader's side of storage: places content on K storage peers chosen
 * from adverts, finds who holds a CID, fetches it from them, renews pins.
 */
/** CIDs `fetchToLocal` found whole here lately: a job that names one pays for the walk once, not on every run. */
const MAX_KNOWN_WHOLE = 1024

export class StorageClient {
  private readonly components: StorageClientComponents
  private readonly knownWhole = new Set<string>()

  constructor (components: StorageClientComponents) {
    this.components = components
  }

  private get self (): string {
    return this.components.libp2p.peerId.toString()
  }

  /**
   * Puts content on `replicas` distinct storage peers, each of which fetches
   * it by CID, checks every block and signs a receipt. Rejects with
   * StorageFullError when every peer asked refused for space, and with
   * NotEnoughHoldersError when none accepted; with fewer than `replicas`
   * it resolves, and the holders add the rest as storage peers appear.
   */
  async store (input: Uint8Array | CID | string, options: StoreOptions = {}): Promise<StoreResult> {
    const signal = options.signal ?? new AbortController().signal
    const { content } = this.components
    const replicas = options.replicas ?? 3
    if (!Number.isSafeInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS) {
      throw new RangeError(`replicas must be a whole number from 1 to ${MAX_REPLICAS}, not ${replicas}`)
    }
    const cid = input instanceof Uint8Array ? await content.add(input, signal) : asCid(input)
    let size = 0
    for await (const block of content.blocks(cid, { signal })) {
      size += block.bytes.byteLength
    }
    let candidates = options.on
    if (candidates == null) {
      await this.storagePeers(replicas, options.waitMs ?? STORAGE_PEER_WAIT_MS, signal)
      candidates = rankHolders(this.components.capacity.peers(), { size, exclude: new Set([this.self]), score: id => this.components.reputation.score(id) })
    } else {
      const named = new Set(candidates)
      await this.storagePeers(named.size, options.waitMs ?? STORAGE_PEER_WAIT_MS, signal, peer => named.has(peer.peerId))
    }
    // signed once the holders are chosen, so waiting for adverts does not eat into a short ttl
    const until = Date.now() + (options.ttl ?? DEFAULT_PIN_TTL_MS)
    const order = await signPinOrder({ v: 1, cid, size, replicas, until, owner: this.self, signer: this.self, renewers: options.renewers ?? [], at: Date.now() }, this.components.signer)
    const pinTimeout = FETCH_TIMEOUT_MS + Math.ceil(size / 1024 / 1024) * PIN_FETCH_MS_PER_MIB + CHALLENGE_TIMEOUT_MS
    const holders: Holding[] = []
    const refusals: Error[] = []
    let next = 0
    while (holders.length < replicas && next < candidates.length) {
      const batch = candidates.slice(next, next + replicas - holders.length)
      next += batch.length
      const planned = [...holders.map(h => h.peerId), ...batch]
      await Promise.all(batch.map(async peerId => {
        try {
          const answer = await askStorePeer(this.components, peerId, { type: 'pin', order, holders: planned }, AbortSignal.any([signal, AbortSignal.timeout(pinTimeout)]))
          if (answer.type === 'error') {
            throw errorFromWire(answer.error)
          }
          if (answer.type !== 'pinned') {
            throw new MalformedMessageError(`${peerId} answered a pin with ${answer.type}`)
          }
          holders.push({ peerId, receipt: await verifyStorageReceipt(answer.receipt, { cid, holder: peerId, now: Date.now() }), signed: answer.receipt })
        } catch (err) {
          signal.throwIfAborted()
          const error = err instanceof Error ? err : new Error(String(err))
          refusals.push(Object.assign(error, { message: `${peerId}: ${error.message}` }))
        }
      }))
    }
    if (holders.length === 0) {
      const why = refusals.map(err => `${err.name}: ${err.message}`).join('; ')
      if (refusals.length > 0 && refusals.every(err => err.name === StorageFullError.NAME)) {
        throw new StorageFullError(`no storage peer had room for ${cid.toString()} (${size} bytes): ${why}`)
      }
      throw new NotEnoughHoldersError(`no storage peer accepted ${cid.toString()} (${size} bytes)${candidates.length === 0 ? ': none advertises that much free space' : `: ${why}`}`)
    }
    // each holder learns the whole set, so they can check and repair it without us
    const ids = holders.map(h => h.peerId)
    await Promise.all(ids.map(async id => {
      await askStorePeer(this.components, id, { type: 'holders', cid, holders: ids }, AbortSignal.any([signal, AbortSignal.timeout(CHALLENGE_TIMEOUT_MS)])).catch(() => {})
    }))
    return { cid, size, until: Math.min(...holders.map(h => h.receipt.until)), holders }
  }

  /**
   * The storage peers that hold the CID now, each with a valid signed
   * receipt: every storage peer we hear adverts from is asked, and the
   * holders they name. A claimant no other holder names is left out when
   * others answered: holders drop one that failed their check from the set
   * they keep, while the dropped one goes on claiming the content under its
   * own receipt (docs/verification.md).
   */
  async holders (input: CID | string, options: HoldersOptions = {}): Promise<Holding[]> {
    return (await this.survey(asCid(input), options)).holders
  }

  private async survey (cid: CID, options: HoldersOptions): Promise<{ holders: Holding[], order?: Signed, renewal?: Signed }> {
    const signal = options.signal ?? new AbortController().signal
    await this.storagePeers(1, options.waitMs ?? STORAGE_PEER_WAIT_MS, signal)
    const asked = new Set<string>()
    const holders: Holding[] = []
    /** The holder set each claimant keeps, itself left out. */
    const setOf = new Map<string, string[]>()
    const found: { order?: Signed, renewal?: Signed } = {}
    let round = this.components.capacity.peers().filter(peer => peer.advert.storageBytes > 0).map(peer => peer.peerId)
    if (this.components.holder.record(cid) != null) {
      round.push(this.self)
    }
    while (round.length > 0) {
      const named: string[] = []
      await Promise.all(round.filter(id => !asked.has(id)).map(async peerId => {
        asked.add(peerId)
        const answer = await this.ask(peerId, { type: 'status', cid }, AbortSignal.any([signal, AbortSignal.timeout(CHALLENGE_TIMEOUT_MS)])).catch(() => undefined)
        if (answer?.type !== 'holding') {
          return
        }
        try {
          holders.push({ peerId, receipt: await verifyStorageReceipt(answer.receipt, { cid, holder: peerId, now: Date.now() }), signed: answer.receipt })
          found.order ??= answer.order
          found.renewal ??= answer.renewal
          named.push(...answer.holders)
          setOf.set(peerId, answer.holders.filter(id => id !== peerId))
        } catch {
          // an invalid receipt is no holding
        }
      }))
      round = named.filter(id => !asked.has(id))
    }
    const vouched = holders.filter(h => holders.length === 1 || holders.some(other => setOf.get(other.peerId)?.includes(h.peerId) === true))
    // holders that could not tell each other their sets still count
    return { holders: vouched.length > 0 ? vouched : holders, ...found }
  }

  /**
   * Fetches stored content from its holders (or from here, or any connected
   * peer), every block checked; rejects with ContentFetchError when it does
   * not arrive within FETCH_TIMEOUT_MS plus PIN_FETCH_MS_PER_MIB per MiB.
   */
  async get (input: CID | string, options: HoldersOptions & { maxBytes?: number } = {}): Promise<Uint8Array> {
    const cid = asCid(input)
    const signal = options.signal ?? new AbortController().signal
    await this.fetchToLocal(cid, signal, options)
    return this.components.content.get(cid, { signal, maxBytes: options.maxBytes ?? Number.MAX_SAFE_INTEGER, what: 'stored content' })
  }

  /**
   * Fetches stored content as the file, folder or symlink it is (what
   * `store` of a folder gives back as a folder), every block checked; the
   * same deadline as `get`, and at most `maxBytes` of file contents.
   */
  async getEntry (input: CID | string, options: HoldersOptions & { maxBytes?: number } = {}): Promise<TreeEntry> {
    const cid = asCid(input)
    const signal = options.signal ?? new AbortController().signal
    await this.fetchToLocal(cid, signal, options)
    return this.components.content.getEntry(cid, { signal, maxBytes: options.maxBytes ?? Number.MAX_SAFE_INTEGER, maxEntries: Number.MAX_SAFE_INTEGER, what: 'stored content' })
  }

  /**
   * Makes sure every block of the content is here, fetched from its holders
   * if need be (asking them connects us, and bitswap asks every connected
   * peer), so reading it needs no network and the workers we send jobs to
   * can fetch it from us.
   */
  async fetchToLocal (cid: CID, signal: AbortSignal, options: HoldersOptions = {}): Promise<void> {
    const key = cid.toString()
    if (this.knownWhole.has(key)) {
      return
    }
    const holders = await this.components.content.has(cid, signal) ? [] : await this.holders(cid, { ...options, signal })
    const size = Math.max(0, ...holders.map(h => h.receipt.size))
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(FETCH_TIMEOUT_MS + Math.ceil(size / 1024 / 1024) * PIN_FETCH_MS_PER_MIB)])
    try {
      for await (const block of this.components.content.blocks(cid, { signal: deadline })) {
        void block
      }
      if (this.knownWhole.size >= MAX_KNOWN_WHOLE) {
        this.knownWhole.delete(this.knownWhole.values().next().value as string)
      }
      this.knownWhole.add(key)
    } catch (err) {
      signal.throwIfAborted()
      throw new ContentFetchError(`could not fetch ${cid.toString()} from ${holders.length === 0 ? 'any connected peer (no holder found)' : `its ${holders.length} holder(s)`}: ${(err as Error).message}`, { cause: err })
    }
  }

  /**
   * Extends a pin to `ttl` from now on every holder found. As the owner, the
   * order is replaced; as one of its renewers, a renewal is added beside it.
   */
  async renew (input: CID | string, options: HoldersOptions & { ttl?: number } = {}): Promise<Holding[]> {
    const cid = asCid(input)
    const signal = options.signal ?? new AbortController().signal
    const survey = await this.survey(cid, options)
    if (survey.order == null) {
      throw new NotEnoughHoldersError(`no storage peer holds ${cid.toString()}`)
    }
    const first = await verifyPinOrder(survey.order)
    const renewal = await signPinOrder({ ...first, until: Date.now() + (options.ttl ?? DEFAULT_PIN_TTL_MS), signer: this.self, at: Date.now() }, this.components.signer)
    const renewed: Holding[] = []
    await Promise.all(survey.holders.map(async ({ peerId }) => {
      const answer = await this.ask(peerId, { type: 'renew', order: renewal }, AbortSignal.any([signal, AbortSignal.timeout(CHALLENGE_TIMEOUT_MS)]))
      if (answer.type === 'error') {
        throw errorFromWire(answer.error)
      }
      if (answer.type === 'pinned') {
        renewed.push({ peerId, receipt: await verifyStorageReceipt(answer.receipt, { cid, holder: peerId }), signed: answer.receipt })
      }
    }))
    return renewed
  }

  private async ask (peerId: string, request: StoreRequest, signal: AbortSignal): Promise<StoreResponse> {
    return peerId === this.self ? this.components.holder.answerLocal(request, signal) : askStorePeer(this.components, peerId, request, signal)
  }

  /** Waits until `count` storage peers advertise (or the time is up), then a moment for the rest to arrive. */
  private async storagePeers (count: number, waitMs: number, signal: AbortSignal, wanted: (peer: PeerCapacity) => boolean = () => true): Promise<PeerCapacity[]> {
    const storage = (): PeerCapacity[] => this.components.capacity.peers().filter(peer => peer.advert.storageBytes > 0 && wanted(peer))
    const deadline = Date.now() + waitMs
    while (storage().length < count && Date.now() < deadline) {
      signal.throwIfAborted()
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    await new Promise(resolve => setTimeout(resolve, ADVERT_SETTLE_MS))
    return storage()
  }
}

function asCid (input: CID | string): CID {
  if (typeof input !== 'string') {
    return input
  }
  try {
    return CID.parse(input)
  } catch (err) {
    throw new MalformedMessageError(`"${input}" is not a CID: ${(err as Error).message}`)
  }
}
