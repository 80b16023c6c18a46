/**
 * What the store protocol (`/wasmesh/store/1.0.0`) carries: the owner's
 * signed pin order, the holder's signed storage receipt, the pin record a
 * holder keeps, and the request and answer messages. Every decoder checks
 * shape and bounds and throws MalformedMessageError naming the field.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { concat } from 'uint8arrays/concat'
import { fromString } from 'uint8arrays/from-string'
import { MAX_RENEWERS, MAX_REPLICAS, MAX_STORE_MESSAGE_BYTES, MAX_STRING_LENGTH, PIN_ORDER_SIGNING_DOMAIN, STORAGE_RECEIPT_SIGNING_DOMAIN } from '../constants.ts'
import { InvalidPinOrderError, InvalidReceiptError, MalformedMessageError, type WireError } from '../errors.ts'
import { decodeCbor, encodeCbor } from './cbor.ts'
import { asArray, asBytes, asCid, asInteger, asRecord, asString, oneOf, onlyKeys, shown } from './validate.ts'
import type { Signer } from './receipt.ts'
import { sha256 } from 'multiformats/hashes/sha2'
import type { CID } from 'multiformats/cid'

/**
 * The owner's instruction to keep content: signed by `signer`, which is the
 * owner for a first order, and the owner or one of its `renewers` for a
 * renewal. Holders forward it unchanged when they place a new replica, so
 * every holder can check who asked, for how long, and how many copies.
 */
export interface PinOrder {
  v: 1
  cid: CID
  /** Bytes of all the content's blocks: what it costs a holder. */
  size: number
  replicas: number
  /** Keep until (ms since epoch); collected after. */
  until: number
  /** The peer id whose share of holders' space this uses. */
  owner: string
  /** The peer id whose key signed this order. */
  signer: string
  /** Peer ids the owner authorises to renew the pin. */
  renewers: string[]
  /** When it was signed (ms since epoch): of two orders for one CID, the later wins. */
  at: number
}

/** A holder's signed promise: it has every block of `cid` and keeps it until `until`. */
export interface StorageReceipt {
  v: 1
  holder: string
  cid: CID
  size: number
  until: number
  owner: string
  at: number
}

/** Signed bytes: the dag-cbor payload and a signature over a domain prefix and the payload. */
export interface Signed {
  payload: Uint8Array
  signature: Uint8Array
}

/** What a holder keeps for each pin, in its datastore. */
export interface PinRecord {
  v: 1
  /** The owner's latest order (signed by the owner). */
  order: Signed
  /** A later renewal signed by one of the order's renewers, if any. */
  renewal?: Signed
  /** Our receipt for it. */
  receipt: Signed
  /** The holders of this CID as we know them, us included: we check them and repair the set. */
  holders: string[]
}

const receiptDomain = fromString(STORAGE_RECEIPT_SIGNING_DOMAIN)
const orderDomain = fromString(PIN_ORDER_SIGNING_DOMAIN)
const PEER_ID_LENGTH = 128

function asPeerId (value: unknown, field: string): string {
  const id = asString(value, field, PEER_ID_LENGTH)
  try {
    peerIdFromString(id)
  } catch {
    throw new MalformedMessageError(`${field} must be a peer id`)
  }
  return id
}

const asTime = (value: unknown, field: string): number => asInteger(value, field, 0, Number.MAX_SAFE_INTEGER)

export function validatePinOrder (value: unknown): PinOrder {
  const record = asRecord(value, 'pin order')
  onlyKeys(record, ['v', 'cid', 'size', 'replicas', 'until', 'owner', 'signer', 'renewers', 'at'], 'pin order')
  if (record.v !== 1) {
    throw new MalformedMessageError(`pin order version ${shown(record.v)} is not supported (expected 1)`)
  }
  return {
    v: 1,
    cid: asCid(record.cid, 'pin order.cid'),
    size: asTime(record.size, 'pin order.size'),
    replicas: asInteger(record.replicas, 'pin order.replicas', 1, MAX_REPLICAS),
    until: asTime(record.until, 'pin order.until'),
    owner: asPeerId(record.owner, 'pin order.owner'),
    signer: asPeerId(record.signer, 'pin order.signer'),
    renewers: asArray(record.renewers, 'pin order.renewers', MAX_RENEWERS).map((id, i) => asPeerId(id, `pin order.renewers[${i}]`)),
    at: asTime(record.at, 'pin order.at')
  }
}

export function validateStorageReceipt (value: unknown): StorageReceipt {
  const record = asRecord(value, 'storage receipt')
  onlyKeys(record, ['v', 'holder', 'cid', 'size', 'until', 'owner', 'at'], 'storage receipt')
  if (record.v !== 1) {
    throw new MalformedMessageError(`storage receipt version ${shown(record.v)} is not supported (expected 1)`)
  }
  return {
    v: 1,
    holder: asPeerId(record.holder, 'storage receipt.holder'),
    cid: asCid(record.cid, 'storage receipt.cid'),
    size: asTime(record.size, 'storage receipt.size'),
    until: asTime(record.until, 'storage receipt.until'),
    owner: asPeerId(record.owner, 'storage receipt.owner'),
    at: asTime(record.at, 'storage receipt.at')
  }
}

export function validateSigned (value: unknown, field: string): Signed {
  const record = asRecord(value, field)
  onlyKeys(record, ['payload', 'signature'], field)
  return { payload: asBytes(record.payload, `${field}.payload`, 4096), signature: asBytes(record.signature, `${field}.signature`, 512) }
}

async function signedByPeer (peerId: string, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
  const key = peerIdFromString(peerId).publicKey
  if (key == null) {
    return false
  }
  try {
    return await key.verify(data, signature)
  } catch {
    return false
  }
}

export async function signPinOrder (order: PinOrder, signer: Signer): Promise<Signed> {
  const payload = encodeCbor(validatePinOrder(order))
  return { payload, signature: await signer.sign(concat([orderDomain, payload])) }
}

/** Decodes a signed pin order and checks that `signer` signed it. Who may sign is the holder's call (see StorageHolder). */
export async function verifyPinOrder (signed: Signed): Promise<PinOrder> {
  const order = validatePinOrder(decodeCbor(signed.payload, 'pin order'))
  if (!await signedByPeer(order.signer, concat([orderDomain, signed.payload]), signed.signature)) {
    throw new InvalidPinOrderError(`the pin order for ${order.cid.toString()} is not signed by ${order.signer}`)
  }
  return order
}

/**
 * What a holder accepts as instruction: the owner's order, signed by the
 * owner, and optionally a renewal for the same CID signed by the owner or
 * one of the order's renewers. The pin lasts until the later of the two.
 */
export async function checkPinOrder (order: Signed, renewal: Signed | undefined, now: number): Promise<{ order: PinOrder, until: number }> {
  const first = await verifyPinOrder(order)
  if (first.signer !== first.owner) {
    throw new InvalidPinOrderError(`the pin order for ${first.cid.toString()} is signed by ${first.signer}, not by its owner ${first.owner}`)
  }
  let until = first.until
  if (renewal != null) {
    const later = await verifyPinOrder(renewal)
    if (later.cid.toString() !== first.cid.toString()) {
      throw new InvalidPinOrderError(`the renewal is for ${later.cid.toString()}, not ${first.cid.toString()}`)
    }
    if (later.signer !== first.owner && !first.renewers.includes(later.signer)) {
      throw new InvalidPinOrderError(`${later.signer} may not renew ${first.cid.toString()}: the owner authorised ${first.renewers.length === 0 ? 'no one' : first.renewers.join(', ')}`)
    }
    until = Math.max(until, later.until)
  }
  if (until <= now) {
    throw new InvalidPinOrderError(`the pin of ${first.cid.toString()} ran out at ${new Date(until).toISOString()}`)
  }
  return { order: first, until }
}

export async function signStorageReceipt (receipt: StorageReceipt, signer: Signer): Promise<Signed> {
  const payload = encodeCbor(validateStorageReceipt(receipt))
  return { payload, signature: await signer.sign(concat([receiptDomain, payload])) }
}

/**
 * Checks a storage receipt with nothing but the peer id inside it. Pass
 * `expect` to also pin the CID and the holder, and `now` to refuse one that
 * has run out.
 */
export async function verifyStorageReceipt (signed: Signed, expect: { cid?: CID, holder?: string, now?: number } = {}): Promise<StorageReceipt> {
  const receipt = validateStorageReceipt(decodeCbor(signed.payload, 'storage receipt'))
  if (!await signedByPeer(receipt.holder, concat([receiptDomain, signed.payload]), signed.signature)) {
    throw new InvalidReceiptError(`the storage receipt's signature does not match ${receipt.holder}: it was altered or forged`)
  }
  if (expect.cid != null && expect.cid.toString() !== receipt.cid.toString()) {
    throw new InvalidReceiptError(`the storage receipt is for ${receipt.cid.toString()}, not ${expect.cid.toString()}`)
  }
  if (expect.holder != null && expect.holder !== receipt.holder) {
    throw new InvalidReceiptError(`the storage receipt was signed by ${receipt.holder}, not by ${expect.holder}`)
  }
  if (expect.now != null && receipt.until <= expect.now) {
    throw new InvalidReceiptError(`the storage receipt ran out at ${new Date(receipt.until).toISOString()}`)
  }
  return receipt
}

export function encodeSigned (signed: Signed): Uint8Array {
  return encodeCbor(validateSigned(signed, 'signed'))
}

export function decodeSigned (bytes: Uint8Array, what: string): Signed {
  return validateSigned(decodeCbor(bytes, what), what)
}

export function encodePinRecord (record: PinRecord): Uint8Array {
  return encodeCbor(validatePinRecord(record))
}

export function decodePinRecord (bytes: Uint8Array): PinRecord {
  return validatePinRecord(decodeCbor(bytes, 'pin record'))
}

function validatePinRecord (value: unknown): PinRecord {
  const record = asRecord(value, 'pin record')
  onlyKeys(record, ['v', 'order', 'renewal', 'receipt', 'holders'], 'pin record')
  if (record.v !== 1) {
    throw new MalformedMessageError(`pin record version ${shown(record.v)} is not supported (expected 1)`)
  }
  return {
    v: 1,
    order: validateSigned(record.order, 'pin record.order'),
    ...(record.renewal != null ? { renewal: validateSigned(record.renewal, 'pin record.renewal') } : {}),
    receipt: validateSigned(record.receipt, 'pin record.receipt'),
    holders: asHolders(record.holders, 'pin record.holders')
  }
}

function asHolders (value: unknown, field: string): string[] {
  return asArray(value, field, 4 * MAX_REPLICAS).map((id, i) => asPeerId(id, `${field}[${i}]`))
}

/** A store-protocol request. */
export type StoreRequest =
  /** Fetch the content, keep it, sign a receipt. `holders`: the others that hold it or are being asked. */
  | { type: 'pin', order: Signed, renewal?: Signed, holders: string[] }
  /** Do you hold this CID? */
  | { type: 'status', cid: CID }
  /** Prove you have this block of a CID you pin: hash it after the nonce, from your own store only. */
  | { type: 'challenge', cid: CID, block: CID, nonce: Uint8Array }
  /** The holder set of a CID changed (sent by a holder, or by the owner after placing). */
  | { type: 'holders', cid: CID, holders: string[] }
  /** Keep it longer: a later order, signed by the owner (replaces the order) or by a renewer (kept as the renewal). */
  | { type: 'renew', order: Signed }

/** A store-protocol answer. */
export type StoreResponse =
  | { type: 'pinned', receipt: Signed }
  | { type: 'holding', receipt: Signed, holders: string[], order: Signed, renewal?: Signed }
  | { type: 'absent' }
  /** sha2-256 of the challenge's nonce followed by the block's bytes. */
  | { type: 'proof', hash: Uint8Array }
  | { type: 'ok' }
  | { type: 'error', error: WireError }

const REQUEST_TYPES = ['pin', 'status', 'challenge', 'holders', 'renew'] as const
const RESPONSE_TYPES = ['pinned', 'holding', 'absent', 'proof', 'ok', 'error'] as const

/** What a challenged holder sends back: sha2-256 of the nonce and the block, so the answer is 32 bytes and cannot be computed before the nonce is known. */
export async function challengeProof (nonce: Uint8Array, block: Uint8Array): Promise<Uint8Array> {
  return (await sha256.digest(concat([nonce, block]))).digest
}

export function encodeStoreMessage (message: StoreRequest | StoreResponse): Uint8Array {
  return encodeCbor(message)
}

export function decodeStoreRequest (bytes: Uint8Array): StoreRequest {
  const record = asRecord(decodeCbor(bytes, 'store request'), 'store request')
  const type = oneOf(record.type, 'store request.type', REQUEST_TYPES)
  switch (type) {
    case 'pin':
      onlyKeys(record, ['type', 'order', 'renewal', 'holders'], 'pin request')
      return { type, order: validateSigned(record.order, 'pin request.order'), ...renewalOf(record, 'pin request'), holders: asHolders(record.holders, 'pin request.holders') }
    case 'status':
      onlyKeys(record, ['type', 'cid'], 'status request')
      return { type, cid: asCid(record.cid, 'status request.cid') }
    case 'challenge':
      onlyKeys(record, ['type', 'cid', 'block', 'nonce'], 'challenge')
      return { type, cid: asCid(record.cid, 'challenge.cid'), block: asCid(record.block, 'challenge.block'), nonce: asBytes(record.nonce, 'challenge.nonce', 64) }
    case 'holders':
      onlyKeys(record, ['type', 'cid', 'holders'], 'holders update')
      return { type, cid: asCid(record.cid, 'holders update.cid'), holders: asHolders(record.holders, 'holders update.holders') }
    case 'renew':
      onlyKeys(record, ['type', 'order'], 'renew request')
      return { type, order: validateSigned(record.order, 'renew request.order') }
  }
}

function renewalOf (record: Record<string, unknown>, what: string): { renewal?: Signed } {
  return record.renewal != null ? { renewal: validateSigned(record.renewal, `${what}.renewal`) } : {}
}

export function decodeStoreResponse (bytes: Uint8Array): StoreResponse {
  if (bytes.byteLength > MAX_STORE_MESSAGE_BYTES) {
    throw new MalformedMessageError(`store answer is ${bytes.byteLength} bytes, more than the ${MAX_STORE_MESSAGE_BYTES} allowed`)
  }
  const record = asRecord(decodeCbor(bytes, 'store answer'), 'store answer')
  const type = oneOf(record.type, 'store answer.type', RESPONSE_TYPES)
  switch (type) {
    case 'pinned':
      onlyKeys(record, ['type', 'receipt'], 'pinned answer')
      return { type, receipt: validateSigned(record.receipt, 'pinned answer.receipt') }
    case 'holding':
      onlyKeys(record, ['type', 'receipt', 'holders', 'order', 'renewal'], 'holding answer')
      return { type, receipt: validateSigned(record.receipt, 'holding answer.receipt'), holders: asHolders(record.holders, 'holding answer.holders'), order: validateSigned(record.order, 'holding answer.order'), ...renewalOf(record, 'holding answer') }
    case 'proof':
      onlyKeys(record, ['type', 'hash'], 'proof answer')
      return { type, hash: asBytes(record.hash, 'proof answer.hash', 64) }
    case 'error': {
      onlyKeys(record, ['type', 'error'], 'error answer')
      const error = asRecord(record.error, 'error answer.error')
      return { type, error: { name: asString(error.name, 'error answer.error.name', 128), message: asString(error.message, 'error answer.error.message', MAX_STRING_LENGTH) } }
    }
    case 'absent':
    case 'ok':
      onlyKeys(record, ['type'], `${type} answer`)
      return { type }
  }
}
