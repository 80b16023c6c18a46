import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { Key, type Datastore } from 'interface-datastore'
import { equals } from 'uint8arrays/equals'
import { FUNCTIONS_PROTOCOL, FUNCTIONS_TOPIC, FUNCTION_SYNC_TIMEOUT_MS, MAX_KNOWN_FUNCTIONS, MAX_MANIFEST_BYTES } from '../constants.ts'
import { InvalidManifestError } from '../errors.ts'
import { decodeSignedManifest, encodeSignedManifest, functionAddress, verifyManifest, type FunctionManifest, type SignedManifest, type VerifiedManifest } from '../wire/function.ts'
import type { IdentifyResult, Libp2p, Libp2pEvents, Startable, TypedEventTarget } from '@libp2p/interface'

export interface FunctionRegistryComponents {
  pubsub: GossipSub
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol' | 'getPeers'>
  /** libp2p's events: a newly identified neighbour that speaks the functions protocol is asked for its manifests. */
  events: TypedEventTarget<Libp2pEvents>
  /** Where known manifests persist, so a restarted peer still resolves (and hands on) what it knew. */
  datastore: Datastore
}

/** What `wasmesh functions` lists: a function's newest known manifest. */
export interface KnownFunction {
  address: string
  manifest: FunctionManifest
  signed: SignedManifest
}

const PREFIX = '/wasmesh/functions/'

/**
 * The table of function manifests this peer knows: newest valid version per
 * address. Manifests arrive on the functions topic (the validator checks the
 * owner's signature before gossipsub forwards anything) and, for what was
 * deployed before we came, from each neighbour over FUNCTIONS_PROTOCOL, which
 * answers with every manifest it holds. They persist in the datastore.
 *
 * Emits `change` (detail: the KnownFunction) when a newer version is taken.
 */
export class FunctionRegistry extends EventTarget implements Startable {
  private readonly components: FunctionRegistryComponents
  private readonly known = new Map<string, KnownFunction>()
  private readonly syncs = new Set<Promise<void>>()
  private controller = new AbortController()

  constructor (components: FunctionRegistryComponents) {
    super()
    this.components = components
  }

  async start (): Promise<void> {
    this.controller = new AbortController()
    const { pubsub, libp2p, events } = this.components
    for await (const { value } of this.components.datastore.query({ prefix: PREFIX })) {
      await this.accept(decodeSignedManifest(value), false).catch(() => {})
    }
    pubsub.topicValidators.set(FUNCTIONS_TOPIC, this.validate)
    pubsub.addEventListener('message', this.onMessage)
    pubsub.subscribe(FUNCTIONS_TOPIC)
    await libp2p.handle(FUNCTIONS_PROTOCOL, (stream) => { void this.serve(stream) }, { maxInboundStreams: 2, maxOutboundStreams: 2 })
    events.addEventListener('peer:identify', this.onIdentify)
  }

  async stop (): Promise<void> {
    const { pubsub, libp2p, events } = this.components
    this.controller.abort()
    events.removeEventListener('peer:identify', this.onIdentify)
    pubsub.removeEventListener('message', this.onMessage)
    pubsub.topicValidators.delete(FUNCTIONS_TOPIC)
    pubsub.unsubscribe(FUNCTIONS_TOPIC)
    await libp2p.unhandle(FUNCTIONS_PROTOCOL)
    await Promise.allSettled([...this.syncs])
  }

  /** Every known function, newest deployment first. */
  list (): KnownFunction[] {
    return [...this.known.values()].sort((a, b) => b.manifest.timestamp - a.manifest.timestamp)
  }

  get (address: string): KnownFunction | undefined {
    return this.known.get(address)
  }

  /** Takes a signed manifest and spreads it on the topic (to nobody when no peer has subscribed yet: see `spread`). */
  async publish (signed: SignedManifest, signal?: AbortSignal): Promise<KnownFunction> {
    const known = await this.accept(signed, true)
    signal?.throwIfAborted()
    await this.components.pubsub.publish(FUNCTIONS_TOPIC, encodeSignedManifest(signed))
    return known
  }

  /**
   * Publishes a manifest we hold until a neighbour confirms it holds it too
   * (asked over FUNCTIONS_PROTOCOL), or FUNCTION_SYNC_TIMEOUT_MS passes. A
   * peer that just joined may not be in the topic's mesh yet, and gossip
   * published to nobody is dropped: an owner about to go offline must know
   * its manifest got out. Resolves with the neighbours that hold it.
   */
  async spread (signed: SignedManifest, signal?: AbortSignal): Promise<number> {
    const bytes = encodeSignedManifest(signed)
    const deadline = Date.now() + FUNCTION_SYNC_TIMEOUT_MS
    while (true) {
      const { recipients } = await this.components.pubsub.publish(FUNCTIONS_TOPIC, bytes)
      const holders = recipients.length > 0 ? await this.holders(bytes, signal) : 0
      if (holders > 0 || Date.now() >= deadline || this.components.libp2p.getPeers().length === 0) {
        return holders
      }
      await new Promise(resolve => setTimeout(resolve, 200))
      signal?.throwIfAborted()
    }
  }

  /** How many connected peers list exactly this signed manifest. */
  private async holders (bytes: Uint8Array, signal?: AbortSignal): Promise<number> {
    const answers = await Promise.allSettled(this.components.libp2p.getPeers().map(async peer => {
      for (const frame of await this.listFrom(peer.toString(), signal)) {
        if (equals(frame, bytes)) {
          return true
        }
      }
      return false
    }))
    return answers.filter(answer => answer.status === 'fulfilled' && answer.value).length
  }

  /** Waits until every neighbour we were asking has answered (or timed out): a fresh peer's table is then as full as it gets. */
  async synced (): Promise<void> {
    await Promise.allSettled([...this.syncs])
  }

  /**
   * Verifies a signed manifest and keeps it if it is newer than what we hold
   * for its address. Refuses (InvalidManifestError) one not signed by its
   * owner, and one not newer than ours: so nobody can replace a function
   * but its owner, and an old version cannot come back.
   */
  async accept (signed: SignedManifest, persist = true): Promise<KnownFunction> {
    const { manifest } = await verifyManifest(signed)
    const address = functionAddress(manifest)
    const current = this.known.get(address)
    if (current != null && current.manifest.version >= manifest.version) {
      throw new InvalidManifestError(`${address} version ${manifest.version} is not newer than version ${current.manifest.version}, which we hold`)
    }
    if (current == null && this.known.size >= MAX_KNOWN_FUNCTIONS) {
      throw new InvalidManifestError(`this peer already knows ${MAX_KNOWN_FUNCTIONS} functions`)
    }
    const known: KnownFunction = { address, manifest, signed }
    this.known.set(address, known)
    if (persist) {
      await this.components.datastore.put(new Key(PREFIX + address), encodeSignedManifest(signed))
    }
    this.dispatchEvent(new CustomEvent('change', { detail: known }))
    return known
  }

  /** Asks every peer we are connected to for its manifests: for an address nobody told us of. */
  async syncAll (signal?: AbortSignal): Promise<void> {
    await Promise.allSettled(this.components.libp2p.getPeers().map(async peer => this.syncFrom(peer.toString(), signal)))
  }

  /** Asks one neighbour for every manifest it holds, and takes the newer ones. */
  async syncFrom (peerId: string, signal?: AbortSignal): Promise<void> {
    for (const frame of await this.listFrom(peerId, signal)) {
      await this.accept(decodeSignedManifest(frame)).catch(() => {}) // stale or forged entries are skipped, not fatal
    }
  }

  /** The encoded signed manifests one neighbour holds, unchecked. */
  private async listFrom (peerId: string, signal?: AbortSignal): Promise<Uint8Array[]> {
    const deadline = AbortSignal.any([this.controller.signal, AbortSignal.timeout(FUNCTION_SYNC_TIMEOUT_MS), ...(signal != null ? [signal] : [])])
    const stream = await this.components.libp2p.dialProtocol(peerIdFromString(peerId), FUNCTIONS_PROTOCOL, { signal: deadline })
    const onAbort = (): void => { stream.abort(new Error('function sync timed out')) }
    deadline.addEventListener('abort', onAbort, { once: true })
    const frames: Uint8Array[] = []
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_MANIFEST_BYTES + 64 })
      while (frames.length < MAX_KNOWN_FUNCTIONS) {
        try {
          frames.push((await lp.read({ signal: deadline })).subarray())
        } catch {
          break // the end of the list (or a neighbour gone quiet: what came is kept)
        }
      }
    } finally {
      deadline.removeEventListener('abort', onAbort)
      await stream.close().catch(() => { stream.abort(new Error('close failed')) })
    }
    return frames
  }

  private async serve (stream: Parameters<Parameters<Libp2p['handle']>[1]>[0]): Promise<void> {
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_MANIFEST_BYTES + 64 })
      for (const known of this.known.values()) {
        await lp.write(encodeSignedManifest(known.signed), { signal: AbortSignal.timeout(FUNCTION_SYNC_TIMEOUT_MS) })
      }
      await stream.close()
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  private readonly onIdentify = (event: CustomEvent<IdentifyResult>): void => {
    if (!event.detail.protocols.includes(FUNCTIONS_PROTOCOL)) {
      return
    }
    const sync = this.syncFrom(event.detail.peerId.toString()).catch(() => {}).finally(() => { this.syncs.delete(sync) })
    this.syncs.add(sync)
  }

  private readonly validate = async (_from: unknown, message: Message): Promise<TopicValidatorResult> => {
    try {
      await verifyManifest(decodeSignedManifest(message.data))
      return TopicValidatorResult.Accept
    } catch {
      return TopicValidatorResult.Reject
    }
  }

  private readonly onMessage = (event: CustomEvent<Message>): void => {
    if (event.detail.topic !== FUNCTIONS_TOPIC) {
      return
    }
    void this.accept(decodeSignedManifest(event.detail.data)).catch(() => {}) // an older version than ours: ignored
  }
}

/** Builds the registry (libp2p-style factory). */
export function functionRegistry (): (components: FunctionRegistryComponents) => FunctionRegistry {
  return components => new FunctionRegistry(components)
}

export type { VerifiedManifest }
