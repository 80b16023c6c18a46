import { peerIdFromString } from '@libp2p/peer-id'
import { equals } from 'uint8arrays/equals'
import { fromString } from 'uint8arrays/from-string'
import { toString } from 'uint8arrays/to-string'
import { concat } from 'uint8arrays/concat'
import { contentHash, decodeCbor, encodeCbor } from './cbor.ts'
import { MAX_INLINE_BYTES, MAX_RECEIPT_BATCH, MAX_STRING_LENGTH, RECEIPT_BATCH_SIGNING_DOMAIN, RECEIPT_SIGNING_DOMAIN } from '../constants.ts'
import { InvalidReceiptError, MalformedMessageError } from '../errors.ts'
import { MAX_MOUNTS } from '../runtime/fs-mounts.ts'
import { asArray, asBoolean, asBytes, asCid, asDuration, asInteger, asRecord, asString, onlyKeys, shown } from './validate.ts'
import type { CID } from 'multiformats/cid'
import { merkleLeaf, merkleRootOf, merkleTree } from './merkle.ts'
import type { PublicKey } from '@libp2p/interface'
import type { Receipt, ReceiptBatchProof, SignedReceipt, VerifiedReceipt } from './receipt-types.ts'

export type { MountOutput, Receipt, ReceiptBatchProof, ReceiptStats, SignedReceipt, VerifiedReceipt } from './receipt-types.ts'

/** Bytes of stderr a receipt keeps: the tail, where the error usually is. */
export const MAX_STDERR_BYTES = 4096
const domain = fromString(RECEIPT_SIGNING_DOMAIN)
const batchDomain = fromString(RECEIPT_BATCH_SIGNING_DOMAIN)
/** Deepest path a batch of MAX_RECEIPT_BATCH receipts can have. */
const MAX_BATCH_PATH = Math.ceil(Math.log2(MAX_RECEIPT_BATCH))

/** Signs bytes with the peer's key. A libp2p PrivateKey is one; a platform may supply a faster one for the same key. */
export interface Signer {
  sign: (data: Uint8Array) => Uint8Array | Promise<Uint8Array>
}

export async function signReceipt (receipt: Receipt, signer: Signer): Promise<SignedReceipt> {
  const payload = encodeCbor(validateReceipt(receipt))
  const signature = await signer.sign(concat([domain, payload]))
  return { payload, signature }
}

/**
 * Signs several receipts with one signature over the root of a Merkle tree
 * of their payloads; each comes back with its path to that root, and still
 * verifies alone. A batch of one is signed as a single receipt.
 */
export async function signReceipts (receipts: readonly Receipt[], signer: Signer): Promise<SignedReceipt[]> {
  if (receipts.length === 1) {
    return [await signReceipt(receipts[0] as Receipt, signer)]
  }
  if (receipts.length > MAX_RECEIPT_BATCH) {
    throw new RangeError(`a batch holds at most ${MAX_RECEIPT_BATCH} receipts, not ${receipts.length}`)
  }
  const payloads = receipts.map(receipt => encodeCbor(validateReceipt(receipt)))
  const { root, paths } = await merkleTree(await Promise.all(payloads.map(merkleLeaf)))
  const signature = await signer.sign(concat([batchDomain, root]))
  return payloads.map((payload, index) => ({ payload, signature, batch: { index, count: payloads.length, path: paths[index] as Uint8Array[] } }))
}

/**
 * Batch roots whose signature was already checked, so the other receipts of
 * a batch cost a few hashes rather than a signature check, and receipts of
 * one batch that arrive together share the check in flight. Bounded: an
 * entry only saves work, and a forged one is dropped once refused.
 */
const verifiedRoots = new Map<string, Promise<boolean>>()
const MAX_VERIFIED_ROOTS = 4096

/** Public keys of the workers we heard from lately: parsing a peer id costs more than hashing a path. */
const workerKeys = new Map<string, PublicKey>()
const MAX_WORKER_KEYS = 1024

function workerKey (worker: string): PublicKey {
  let key = workerKeys.get(worker)
  if (key == null) {
    let publicKey
    try {
      publicKey = peerIdFromString(worker).publicKey
    } catch {
      throw new InvalidReceiptError(`receipt names "${worker}", which is not a peer id`)
    }
    if (publicKey == null) {
      throw new InvalidReceiptError(`peer id ${worker} does not embed its public key, so its receipts cannot be verified`)
    }
    key = publicKey
    if (workerKeys.size >= MAX_WORKER_KEYS) {
      workerKeys.delete(workerKeys.keys().next().value as string)
    }
    workerKeys.set(worker, key)
  }
  return key
}

/**
 * Each worker's key imported into WebCrypto once: @libp2p/crypto builds a
 * key object for every verify, which cost about twice the check itself in a
 * requester's profile. Undefined where WebCrypto has no Ed25519, or no
 * WebCrypto at all.
 */
const webKeys = new WeakMap<PublicKey, Promise<CryptoKey | undefined>>()

async function webKey (key: PublicKey): Promise<CryptoKey | undefined> {
  let imported = webKeys.get(key)
  if (imported == null) {
    // no crypto.subtle at all outside a secure context (a page over plain HTTP on a LAN address): @libp2p/crypto's own code then
    imported = key.type === 'Ed25519' && globalThis.crypto?.subtle != null
      ? globalThis.crypto.subtle.importKey('raw', key.raw as Uint8Array<ArrayBuffer>, { name: 'Ed25519' }, false, ['verify']).catch(() => undefined)
      : Promise.resolve(undefined)
    webKeys.set(key, imported)
  }
  return imported
}

async function signatureValid (key: PublicKey, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
  try {
    const imported = await webKey(key)
    return imported != null
      ? await globalThis.crypto.subtle.verify({ name: 'Ed25519' }, imported, signature as Uint8Array<ArrayBuffer>, data as Uint8Array<ArrayBuffer>)
      : await key.verify(data, signature)
  } catch {
    return false // e.g. a signature of the wrong length for the key type
  }
}

/** Whether `signed` carries a valid signature of `worker`: over its payload, or over its batch's root. */
async function signedBy (signed: SignedReceipt, worker: string): Promise<boolean> {
  const key = workerKey(worker)
  if (signed.batch == null) {
    return signatureValid(key, concat([domain, signed.payload]), signed.signature)
  }
  const { index, count, path } = signed.batch
  const root = await merkleRootOf(await merkleLeaf(signed.payload), index, count, path)
  if (root == null) {
    return false
  }
  const cacheKey = `${worker}/${toString(root, 'base16')}/${toString(signed.signature, 'base16')}`
  // receipts of one batch arrive together: they share the one check, even while it is still running
  let valid = verifiedRoots.get(cacheKey)
  if (valid == null) {
    valid = signatureValid(key, concat([batchDomain, root]), signed.signature)
    if (verifiedRoots.size >= MAX_VERIFIED_ROOTS) {
      verifiedRoots.delete(verifiedRoots.keys().next().value as string)
    }
    verifiedRoots.set(cacheKey, valid)
    // only good roots are remembered: a forged one is checked (and refused) every time
    void valid.then(ok => {
      if (!ok) {
        verifiedRoots.delete(cacheKey)
      }
    })
  }
  return valid
}

/**
 * Checks a signed receipt using nothing but the peer id inside it: the
 * signature must come from the key that peer id embeds. Pass `expect` to also
 * pin the job and the worker, so a valid receipt for another job, or from a
 * peer other than the one asked, is refused too.
 */
export async function verifyReceipt (signed: SignedReceipt, expect: { job?: CID, worker?: string } = {}): Promise<VerifiedReceipt> {
  const receipt = validateReceipt(decodeCbor(signed.payload, 'receipt'))
  if (!await signedBy(signed, receipt.worker)) {
    throw new InvalidReceiptError(`the signature does not match the receipt and the key of ${receipt.worker}: it was altered or forged`)
  }
  if (expect.job != null && expect.job.toString() !== receipt.job.toString()) {
    throw new InvalidReceiptError(`the receipt is for job ${receipt.job.toString()}, not ${expect.job.toString()}`)
  }
  if (expect.worker != null && expect.worker !== receipt.worker) {
    throw new InvalidReceiptError(`the receipt was signed by ${receipt.worker}, not by ${expect.worker} who ran the job`)
  }
  if (receipt.output instanceof Uint8Array) {
    await checkOutput(receipt, receipt.output)
  }
  return { receipt, signed }
}

/** Checks fetched output bytes against the hash and size a receipt states. */
export async function checkOutput (receipt: Receipt, output: Uint8Array): Promise<void> {
  if (output.byteLength !== receipt.outputSize || !equals(await contentHash(output), receipt.outputHash)) {
    throw new InvalidReceiptError(`the output does not match the hash in ${receipt.worker}'s receipt`)
  }
}

export function receiptSucceeded (receipt: Receipt): boolean {
  return receipt.exitCode === 0 && receipt.error == null
}

export function encodeSignedReceipt (signed: SignedReceipt): Uint8Array {
  const { payload, signature, batch } = signed
  return encodeCbor(batch == null ? { payload, signature } : { payload, signature, batch: { index: batch.index, count: batch.count, path: batch.path } })
}

export function decodeSignedReceipt (bytes: Uint8Array): SignedReceipt {
  const record = asRecord(decodeCbor(bytes, 'signed receipt'), 'signed receipt')
  onlyKeys(record, ['payload', 'signature', 'batch'], 'signed receipt')
  const signed: SignedReceipt = {
    payload: asBytes(record.payload, 'signed receipt payload', MAX_INLINE_BYTES + 16 * 1024),
    signature: asBytes(record.signature, 'signed receipt signature', 1024)
  }
  if (record.batch !== undefined) {
    signed.batch = decodeBatchProof(record.batch)
  }
  return signed
}

function decodeBatchProof (value: unknown): ReceiptBatchProof {
  const batch = asRecord(value, 'signed receipt batch')
  onlyKeys(batch, ['index', 'count', 'path'], 'signed receipt batch')
  const count = asInteger(batch.count, 'signed receipt batch.count', 2, MAX_RECEIPT_BATCH)
  if (!Array.isArray(batch.path) || batch.path.length > MAX_BATCH_PATH) {
    throw new MalformedMessageError(`signed receipt batch.path must be a list of at most ${MAX_BATCH_PATH} hashes`)
  }
  return {
    index: asInteger(batch.index, 'signed receipt batch.index', 0, count - 1),
    count,
    path: batch.path.map((hash: unknown) => {
      const bytes = asBytes(hash, 'signed receipt batch.path', 32)
      if (bytes.byteLength !== 32) {
        throw new MalformedMessageError('signed receipt batch.path holds hashes of 32 bytes')
      }
      return bytes
    })
  }
}

const RECEIPT_KEYS = ['v', 'job', 'worker', 'exitCode', 'error', 'output', 'outputHash', 'outputSize', 'mounts', 'stderr', 'stats', 'timestamp'] as const

export function validateReceipt (value: unknown): Receipt {
  const record = asRecord(value, 'receipt')
  onlyKeys(record, RECEIPT_KEYS, 'receipt')
  if (record.v !== 1) {
    throw new MalformedMessageError(`receipt version ${shown(record.v)} is not supported (expected 1)`)
  }
  const stats = asRecord(record.stats, 'receipt.stats')
  onlyKeys(stats, ['queueMs', 'fetchMs', 'compileMs', 'execMs', 'moduleCached'], 'receipt.stats')
  const receipt: Receipt = {
    v: 1,
    job: asCid(record.job, 'receipt.job'),
    worker: asString(record.worker, 'receipt.worker', 128),
    exitCode: asInteger(record.exitCode, 'receipt.exitCode', -1, 2 ** 31 - 1),
    output: record.output instanceof Uint8Array ? asBytes(record.output, 'receipt.output', MAX_INLINE_BYTES) : asCid(record.output, 'receipt.output'),
    outputHash: asBytes(record.outputHash, 'receipt.outputHash', 64),
    outputSize: asInteger(record.outputSize, 'receipt.outputSize', 0, Number.MAX_SAFE_INTEGER),
    stderr: asBytes(record.stderr, 'receipt.stderr', MAX_STDERR_BYTES),
    stats: {
      ...(stats.queueMs !== undefined ? { queueMs: asDuration(stats.queueMs, 'receipt.stats.queueMs') } : {}),
      fetchMs: asDuration(stats.fetchMs, 'receipt.stats.fetchMs'),
      compileMs: asDuration(stats.compileMs, 'receipt.stats.compileMs'),
      execMs: asDuration(stats.execMs, 'receipt.stats.execMs'),
      moduleCached: asBoolean(stats.moduleCached, 'receipt.stats.moduleCached')
    },
    timestamp: asInteger(record.timestamp, 'receipt.timestamp', 0, Number.MAX_SAFE_INTEGER)
  }
  if (record.error !== undefined) {
    const error = asRecord(record.error, 'receipt.error')
    onlyKeys(error, ['name', 'message'], 'receipt.error')
    receipt.error = { name: asString(error.name, 'receipt.error.name', 128), message: asString(error.message, 'receipt.error.message', MAX_STRING_LENGTH) }
  }
  if (record.mounts !== undefined) {
    receipt.mounts = asArray(record.mounts, 'receipt.mounts', MAX_MOUNTS).map((entry, i) => {
      const mount = asRecord(entry, `receipt.mounts[${i}]`)
      onlyKeys(mount, ['path', 'cid'], `receipt.mounts[${i}]`)
      return { path: asString(mount.path, `receipt.mounts[${i}].path`, MAX_STRING_LENGTH), cid: asCid(mount.cid, `receipt.mounts[${i}].cid`) }
    })
  }
  return receipt
}
