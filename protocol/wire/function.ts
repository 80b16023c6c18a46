import { peerIdFromString } from '@libp2p/peer-id'
import { concat } from 'uint8arrays/concat'
import { equals } from 'uint8arrays/equals'
import { fromString } from 'uint8arrays/from-string'
import { decodeCbor, encodeCbor } from './cbor.ts'
import { FUNCTION_SIGNING_DOMAIN, LIMIT_BOUNDS, MAX_ENV, MAX_MANIFEST_BYTES, MAX_STRING_LENGTH } from '../constants.ts'
import { InvalidManifestError, MalformedMessageError } from '../errors.ts'
import { asBytes, asCid, asInteger, asRecord, asString, oneOf, onlyKeys, shown } from './validate.ts'
import type { ResourceLimits } from '../runtime/executor.ts'
import type { Signer } from './receipt.ts'
import type { CID } from 'multiformats/cid'

/** How a function is called: WAGI (an HTTP request as CGI), or a plain job's wasi or direct ABI (the body is the input). */
export type FunctionAbi = 'wagi' | 'wasi' | 'direct'

export const FUNCTION_ABIS: readonly FunctionAbi[] = ['wagi', 'wasi', 'direct']

/** A function name: what follows the owner in its address. Lower case, so addresses read the same in every URL. */
export const FUNCTION_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/

/**
 * What an owner publishes under `<owner>/<name>`, signed with the owner's
 * key. The newest valid version wins; nobody but the owner can sign one.
 */
export interface FunctionManifest {
  v: 1
  /** The owner's peer id (Ed25519: it embeds the key that signs the manifest). */
  owner: string
  name: string
  /** A sequence number: a manifest replaces a known one only with a higher version. */
  version: number
  /** The Wasm module, by CID. */
  module: CID
  abi: FunctionAbi
  /** Every call's limits. */
  limits: ResourceLimits
  /** Environment every call gets (WAGI adds the request's variables over it). */
  env: Record<string, string>
  /** ms since the Unix epoch when the owner signed, for display. */
  timestamp: number
}

/** A manifest as it travels: the exact signed bytes and the owner's signature over them. */
export interface SignedManifest {
  payload: Uint8Array
  signature: Uint8Array
}

/** A signed manifest whose signature has been checked against its owner. */
export interface VerifiedManifest {
  manifest: FunctionManifest
  signed: SignedManifest
}

const domain = fromString(FUNCTION_SIGNING_DOMAIN)

/** A function's address: `<owner peer id>/<name>`. */
export function functionAddress (manifest: Pick<FunctionManifest, 'owner' | 'name'>): string {
  return `${manifest.owner}/${manifest.name}`
}

/** Splits `<owner>/<name>`, refusing anything else (MalformedMessageError). */
export function parseFunctionAddress (address: string): { owner: string, name: string } {
  const slash = address.indexOf('/')
  const owner = address.slice(0, slash)
  const name = address.slice(slash + 1)
  if (slash <= 0 || !FUNCTION_NAME.test(name)) {
    throw new MalformedMessageError(`"${address}" is not a function address: expected <owner peer id>/<name>, the name in lower-case letters, digits, ".", "_" or "-"`)
  }
  try {
    peerIdFromString(owner)
  } catch {
    throw new MalformedMessageError(`"${owner}" in the address "${address}" is not a peer id`)
  }
  return { owner, name }
}

export async function signManifest (manifest: FunctionManifest, signer: Signer): Promise<SignedManifest> {
  const payload = encodeCbor(validateManifest(manifest))
  return { payload, signature: await signer.sign(concat([domain, payload])) }
}

/**
 * Decodes a signed manifest and checks it: canonical encoding, every field,
 * and the signature against the key in the `owner` peer id. Anything else is
 * InvalidManifestError (MalformedMessageError for bytes that do not decode).
 */
export async function verifyManifest (signed: SignedManifest): Promise<VerifiedManifest> {
  const manifest = validateManifest(decodeCbor(signed.payload, 'function manifest'))
  if (!equals(encodeCbor(manifest), signed.payload)) {
    throw new MalformedMessageError('function manifest is not in canonical dag-cbor form')
  }
  let key
  try {
    key = peerIdFromString(manifest.owner).publicKey
  } catch {
    throw new InvalidManifestError(`manifest owner "${manifest.owner}" is not a peer id`)
  }
  if (key == null) {
    throw new InvalidManifestError(`manifest owner ${manifest.owner} does not embed its public key`)
  }
  let valid: boolean
  try {
    valid = await key.verify(concat([domain, signed.payload]), signed.signature)
  } catch {
    valid = false // a signature of the wrong length throws, synchronously
  }
  if (!valid) {
    throw new InvalidManifestError(`the manifest for ${functionAddress(manifest)} is not signed by its owner`)
  }
  return { manifest, signed }
}

export function encodeSignedManifest (signed: SignedManifest): Uint8Array {
  return encodeCbor({ payload: signed.payload, signature: signed.signature })
}

export function decodeSignedManifest (bytes: Uint8Array): SignedManifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new MalformedMessageError(`function manifest is ${bytes.byteLength} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`)
  }
  const record = asRecord(decodeCbor(bytes, 'signed manifest'), 'signed manifest')
  onlyKeys(record, ['payload', 'signature'], 'signed manifest')
  return {
    payload: asBytes(record.payload, 'manifest.payload', MAX_MANIFEST_BYTES),
    signature: asBytes(record.signature, 'manifest.signature', 256)
  }
}

const MANIFEST_KEYS = ['v', 'owner', 'name', 'version', 'module', 'abi', 'limits', 'env', 'timestamp'] as const

export function validateManifest (value: unknown): FunctionManifest {
  const record = asRecord(value, 'function manifest')
  onlyKeys(record, MANIFEST_KEYS, 'function manifest')
  if (record.v !== 1) {
    throw new MalformedMessageError(`function manifest version ${shown(record.v)} is not supported (expected 1)`)
  }
  const name = asString(record.name, 'manifest.name', 64)
  if (!FUNCTION_NAME.test(name)) {
    throw new MalformedMessageError(`manifest.name "${name}" must be 1 to 64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit`)
  }
  const limits = asRecord(record.limits, 'manifest.limits')
  onlyKeys(limits, ['timeoutMs', 'memoryBytes', 'outputBytes'], 'manifest.limits')
  const envRecord = asRecord(record.env, 'manifest.env')
  const entries = Object.entries(envRecord)
  if (entries.length > MAX_ENV) {
    throw new MalformedMessageError(`manifest.env has more than ${MAX_ENV} entries`)
  }
  const env: Record<string, string> = {}
  for (const [key, entry] of entries) {
    if (key.includes('=') || key.length === 0 || key === '__proto__') {
      throw new MalformedMessageError(`manifest.env key "${key}" must be non-empty, contain no "=" and not be __proto__`)
    }
    env[key] = asString(entry, `manifest.env.${key}`, MAX_STRING_LENGTH)
  }
  return {
    v: 1,
    owner: asString(record.owner, 'manifest.owner', 128),
    name,
    version: asInteger(record.version, 'manifest.version', 0, Number.MAX_SAFE_INTEGER),
    module: asCid(record.module, 'manifest.module'),
    abi: oneOf(record.abi, 'manifest.abi', FUNCTION_ABIS),
    limits: {
      timeoutMs: asInteger(limits.timeoutMs, 'manifest.limits.timeoutMs', LIMIT_BOUNDS.timeoutMs.min, LIMIT_BOUNDS.timeoutMs.max),
      memoryBytes: asInteger(limits.memoryBytes, 'manifest.limits.memoryBytes', LIMIT_BOUNDS.memoryBytes.min, LIMIT_BOUNDS.memoryBytes.max),
      outputBytes: asInteger(limits.outputBytes, 'manifest.limits.outputBytes', LIMIT_BOUNDS.outputBytes.min, LIMIT_BOUNDS.outputBytes.max)
    },
    env,
    timestamp: asInteger(record.timestamp, 'manifest.timestamp', 0, Number.MAX_SAFE_INTEGER)
  }
}
