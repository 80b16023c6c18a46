import { decodeCbor, encodeCbor } from './cbor.ts'
import { ADVERT_INTERVAL_BOUNDS, MAX_ADVERTISED_ADDRS, MAX_ADVERTISED_MODULES, MAX_ADVERT_BYTES } from '../constants.ts'
import { ABIS, type Abi } from '../runtime/executor.ts'
import { MalformedMessageError } from '../errors.ts'
import { asArray, asBoolean, asBytes, asCid, asInteger, asRecord, asString, oneOf, onlyKeys, shown } from './validate.ts'
import type { CID } from 'multiformats/cid'

/**
 * What a contributing peer offers, published on the capacity topic. The
 * publisher is the gossipsub message's signer, so the advert does not name it.
 */
export interface CapacityAdvert {
  v: 1
  /** Job slots: how many run at once, and how many are free now. */
  slots: { total: number, free: number }
  /** The largest memory limit a job may ask of this peer, in bytes. */
  memoryBytes: number
  /** Bytes of content storage the peer offers. */
  storageBytes: number
  /** Of those, bytes not yet pinned: what a new pin may take. Absent: all of `storageBytes`. */
  storageFree?: number
  /** The storage may vanish without notice (a browser tab's IndexedDB): worth a replica, not the only one. */
  storageVolatile?: boolean
  abis: Abi[]
  /** Modules compiled and ready here: jobs using them start without a fetch. */
  cached: CID[]
  /** Where to dial this peer (multiaddr bytes). */
  addrs: Uint8Array[]
  /** wasmesh version the peer runs. */
  version: string
  /** The environment the peer runs in, for display and scheduling hints. */
  platform: 'node' | 'browser'
  /** Increases with every advert from the same peer, so stale ones can be ignored. */
  seq: number
  /** When the next advert is due, at the latest: peers forget one that misses three. */
  intervalMs: number
}

export const PLATFORMS = ['node', 'browser'] as const

export function encodeAdvert (advert: CapacityAdvert): Uint8Array {
  return encodeCbor(validateAdvert(advert))
}

export function decodeAdvert (bytes: Uint8Array): CapacityAdvert {
  if (bytes.byteLength > MAX_ADVERT_BYTES) {
    throw new MalformedMessageError(`capacity advert is ${bytes.byteLength} bytes, more than the ${MAX_ADVERT_BYTES} allowed`)
  }
  return validateAdvert(decodeCbor(bytes, 'capacity advert'))
}

const ADVERT_KEYS = ['v', 'slots', 'memoryBytes', 'storageBytes', 'storageFree', 'storageVolatile', 'abis', 'cached', 'addrs', 'version', 'platform', 'seq', 'intervalMs'] as const

export function validateAdvert (value: unknown): CapacityAdvert {
  const record = asRecord(value, 'capacity advert')
  onlyKeys(record, ADVERT_KEYS, 'capacity advert')
  if (record.v !== 1) {
    throw new MalformedMessageError(`capacity advert version ${shown(record.v)} is not supported (expected 1)`)
  }
  const slots = asRecord(record.slots, 'advert.slots')
  onlyKeys(slots, ['total', 'free'], 'advert.slots')
  const total = asInteger(slots.total, 'advert.slots.total', 0, 1024)
  const storageBytes = asInteger(record.storageBytes, 'advert.storageBytes', 0, Number.MAX_SAFE_INTEGER)
  return {
    v: 1,
    slots: { total, free: asInteger(slots.free, 'advert.slots.free', 0, total) },
    memoryBytes: asInteger(record.memoryBytes, 'advert.memoryBytes', 0, Number.MAX_SAFE_INTEGER),
    storageBytes,
    ...(record.storageFree != null ? { storageFree: asInteger(record.storageFree, 'advert.storageFree', 0, storageBytes) } : {}),
    ...(record.storageVolatile != null ? { storageVolatile: asBoolean(record.storageVolatile, 'advert.storageVolatile') } : {}),
    abis: asArray(record.abis, 'advert.abis', ABIS.length).map((abi, i) => oneOf(abi, `advert.abis[${i}]`, ABIS)),
    cached: asArray(record.cached, 'advert.cached', MAX_ADVERTISED_MODULES).map((cid, i) => asCid(cid, `advert.cached[${i}]`)),
    addrs: asArray(record.addrs, 'advert.addrs', MAX_ADVERTISED_ADDRS).map((addr, i) => asBytes(addr, `advert.addrs[${i}]`, 512)),
    version: asString(record.version, 'advert.version', 64),
    platform: oneOf(record.platform, 'advert.platform', PLATFORMS),
    seq: asInteger(record.seq, 'advert.seq', 0, Number.MAX_SAFE_INTEGER),
    intervalMs: asInteger(record.intervalMs, 'advert.intervalMs', ADVERT_INTERVAL_BOUNDS.min, ADVERT_INTERVAL_BOUNDS.max)
  }
}
