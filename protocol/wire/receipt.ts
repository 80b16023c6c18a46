import { peerIdFromString } from '@libp2p/peer-id'
import { equals } from 'uint8arrays/equals'
import { fromString } from 'uint8arrays/from-string'
import { concat } from 'uint8arrays/concat'
import { contentHash, decodeCbor, encodeCbor } from './cbor.ts'
import { MAX_INLINE_BYTES, MAX_STRING_LENGTH, RECEIPT_SIGNING_DOMAIN } from '../constants.ts'
import { InvalidReceiptError, MalformedMessageError } from '../errors.ts'
import { MAX_MOUNTS } from '../runtime/fs-mounts.ts'
import { asArray, asBoolean, asBytes, asCid, asDuration, asInteger, asRecord, asString, onlyKeys } from './validate.ts'
import type { CID } from 'multiformats/cid'
import type { Receipt, SignedReceipt, VerifiedReceipt } from './receipt-types.ts'

export type { MountOutput, Receipt, ReceiptStats, SignedReceipt, VerifiedReceipt } from './receipt-types.ts'

/** Bytes of stderr a receipt keeps: the tail, where the error usually is. */
export const MAX_STDERR_BYTES = 4096
const domain = fromString(RECEIPT_SIGNING_DOMAIN)

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
 * Checks a signed receipt using nothing but the peer id inside it: the
 * signature must come from the key that peer id embeds. Pass `expect` to also
 * pin the job and the worker, so a valid receipt for another job, or from a
 * peer other than the one asked, is refused too.
 */
export async function verifyReceipt (signed: SignedReceipt, expect: { job?: CID, worker?: string } = {}): Promise<VerifiedReceipt> {
  const receipt = validateReceipt(decodeCbor(signed.payload, 'receipt'))
  let publicKey
  try {
    publicKey = peerIdFromString(receipt.worker).publicKey
  } catch {
    throw new InvalidReceiptError(`receipt names "${receipt.worker}", which is not a peer id`)
  }
  if (publicKey == null) {
    throw new InvalidReceiptError(`peer id ${receipt.worker} does not embed its public key, so its receipts cannot be verified`)
  }
  let valid: boolean
  try {
    valid = await publicKey.verify(concat([domain, signed.payload]), signed.signature)
  } catch {
    valid = false // e.g. a signature of the wrong length for the key type
  }
  if (!valid) {
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
  return encodeCbor({ payload: signed.payload, signature: signed.signature })
}

export function decodeSignedReceipt (bytes: Uint8Array): SignedReceipt {
  const record = asRecord(decodeCbor(bytes, 'signed receipt'), 'signed receipt')
  onlyKeys(record, ['payload', 'signature'], 'signed receipt')
  return {
    payload: asBytes(record.payload, 'signed receipt payload', MAX_INLINE_BYTES + 16 * 1024),
    signature: asBytes(record.signature, 'signed receipt signature', 1024)
  }
}

const RECEIPT_KEYS = ['v', 'job', 'worker', 'exitCode', 'error', 'output', 'outputHash', 'outputSize', 'mounts', 'stderr', 'stats', 'timestamp'] as const

export function validateReceipt (value: unknown): Receipt {
  const record = asRecord(value, 'receipt')
  onlyKeys(record, RECEIPT_KEYS, 'receipt')
  if (record.v !== 1) {
    throw new MalformedMessageError(`receipt version ${String(record.v)} is not supported (expected 1)`)
  }
  const stats = asRecord(record.stats, 'receipt.stats')
  onlyKeys(stats, ['fetchMs', 'compileMs', 'execMs', 'moduleCached'], 'receipt.stats')
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
