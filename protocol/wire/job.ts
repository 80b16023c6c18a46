import { ABIS, type Abi, type ResourceLimits } from '../runtime/executor.ts'
import { cborCid, decodeCbor, encodeCbor } from './cbor.ts'
import { LIMIT_BOUNDS, MAX_ARGS, MAX_ENV, MAX_INLINE_BYTES, MAX_REDUNDANCY, MAX_STRING_LENGTH } from '../constants.ts'
import { MalformedMessageError } from '../errors.ts'
import { MAX_MOUNTS } from '../runtime/fs-mounts.ts'
import { asArray, asBoolean, asBytes, asCid, asInteger, asRecord, asString, oneOf, onlyKeys, shown } from './validate.ts'
import { equals } from 'uint8arrays/equals'
import type { CID } from 'multiformats/cid'

/**
 * A job spec names everything that determines a job's result: which module,
 * how it is called, on what input, within which limits. Encoded as dag-cbor,
 * its CID is the job's identity.
 */
export interface JobSpec {
  v: 1
  /** The Wasm module, by CID. */
  module: CID
  abi: Abi
  args: string[]
  env: Record<string, string>
  /** Inline bytes (at most MAX_INLINE_BYTES) or the CID of a UnixFS file. */
  input: Uint8Array | CID
  limits: ResourceLimits
  /** How many distinct workers should run it. */
  redundancy: number
  /** Optional: makes otherwise identical specs distinct jobs. */
  nonce?: Uint8Array
  /**
   * Directories the module sees (wasi only). Absent when there are none, so
   * a job without mounts keeps the CID it had before mounts existed.
   */
  mounts?: MountSpec[]
}

/**
 * A directory the module sees at `path`, named by CID so that the job's CID
 * covers its contents: the result cache and quorum hold for mounted jobs too.
 */
export interface MountSpec {
  /** Absolute guest path, normalized: `/`, `/data`, `/out/logs`. */
  path: string
  /**
   * A UnixFS directory, seen as the mount's contents; or a UnixFS file, seen
   * as the one entry of the mount, named by its CID. Absent: an empty directory.
   */
  cid?: CID
  /** A writable mount's final tree comes back, by CID, in the signed receipt. */
  writable: boolean
}

/** A job spec with its encoding and identity. */
export interface EncodedJob {
  cid: CID
  bytes: Uint8Array
  spec: JobSpec
}

export async function encodeJob (spec: JobSpec): Promise<EncodedJob> {
  const valid = validateJob(spec)
  const bytes = encodeCbor(valid)
  return { cid: await cborCid(bytes), bytes, spec: valid }
}

/**
 * Decodes and validates a job spec. Only the canonical encoding is accepted:
 * otherwise one spec could travel under several CIDs (keys out of order,
 * integers as floats), or a CID could cover fields the worker drops.
 */
export async function decodeJob (bytes: Uint8Array): Promise<EncodedJob> {
  const spec = validateJob(decodeCbor(bytes, 'job spec'))
  if (!equals(encodeCbor(spec), bytes)) {
    throw new MalformedMessageError('job spec is not in canonical dag-cbor form (its CID would not be the one its contents give)')
  }
  return { cid: await cborCid(bytes), bytes, spec }
}

const JOB_KEYS = ['v', 'module', 'abi', 'args', 'env', 'input', 'limits', 'redundancy', 'nonce', 'mounts'] as const

export function validateJob (value: unknown): JobSpec {
  const job = asRecord(value, 'job spec')
  onlyKeys(job, JOB_KEYS, 'job spec')
  if (job.v !== 1) {
    throw new MalformedMessageError(`job spec version ${shown(job.v)} is not supported (expected 1)`)
  }
  const args = asArray(job.args, 'job.args', MAX_ARGS).map((arg, i) => asString(arg, `job.args[${i}]`, MAX_STRING_LENGTH))
  const envRecord = asRecord(job.env, 'job.env')
  const envEntries = Object.entries(envRecord)
  if (envEntries.length > MAX_ENV) {
    throw new MalformedMessageError(`job.env has more than ${MAX_ENV} entries`)
  }
  const env: Record<string, string> = {}
  for (const [key, entry] of envEntries) {
    if (key.includes('=') || key.length === 0 || key === '__proto__') {
      throw new MalformedMessageError(`job.env key "${key}" must be non-empty, contain no "=" and not be __proto__`)
    }
    env[key] = asString(entry, `job.env.${key}`, MAX_STRING_LENGTH)
  }
  const limitsRecord = asRecord(job.limits, 'job.limits')
  onlyKeys(limitsRecord, ['timeoutMs', 'memoryBytes', 'outputBytes'], 'job.limits')
  const limits: ResourceLimits = {
    timeoutMs: asInteger(limitsRecord.timeoutMs, 'job.limits.timeoutMs', LIMIT_BOUNDS.timeoutMs.min, LIMIT_BOUNDS.timeoutMs.max),
    memoryBytes: asInteger(limitsRecord.memoryBytes, 'job.limits.memoryBytes', LIMIT_BOUNDS.memoryBytes.min, LIMIT_BOUNDS.memoryBytes.max),
    outputBytes: asInteger(limitsRecord.outputBytes, 'job.limits.outputBytes', LIMIT_BOUNDS.outputBytes.min, LIMIT_BOUNDS.outputBytes.max)
  }
  const spec: JobSpec = {
    v: 1,
    module: asCid(job.module, 'job.module'),
    abi: oneOf(job.abi, 'job.abi', ABIS),
    args,
    env,
    input: job.input instanceof Uint8Array ? asBytes(job.input, 'job.input', MAX_INLINE_BYTES) : asCid(job.input, 'job.input'),
    limits,
    redundancy: asInteger(job.redundancy, 'job.redundancy', 1, MAX_REDUNDANCY)
  }
  if (job.nonce !== undefined) {
    spec.nonce = asBytes(job.nonce, 'job.nonce', 64)
  }
  if (job.mounts !== undefined) {
    const mounts = asArray(job.mounts, 'job.mounts', MAX_MOUNTS).map((entry, i) => validateMount(entry, `job.mounts[${i}]`))
    if (mounts.length === 0) {
      throw new MalformedMessageError('job.mounts is empty: leave it out instead, so the job keeps one CID')
    }
    if (spec.abi !== 'wasi') {
      throw new MalformedMessageError('job.mounts needs the wasi ABI: a direct-ABI module has no filesystem')
    }
    spec.mounts = mounts
  }
  return spec
}

function validateMount (value: unknown, field: string): MountSpec {
  const record = asRecord(value, field)
  onlyKeys(record, ['path', 'cid', 'writable'], field)
  const mount: MountSpec = { path: asString(record.path, `${field}.path`, MAX_STRING_LENGTH), writable: asBoolean(record.writable, `${field}.writable`) }
  if (record.cid !== undefined) {
    mount.cid = asCid(record.cid, `${field}.cid`)
  }
  return mount
}
