/**
 * Property-based fuzzing (fast-check) of every wire decoder: job specs, job
 * messages both ways, capacity adverts, signed receipts (single and Merkle
 * batch, signature check included), the store protocol's messages, pin
 * orders, pin records and storage receipts, function manifests, and
 * dag-cbor itself.
 *
 * Each decoder gets four kinds of input: valid encodings; random bytes; a valid encoding
 * mutated (bytes flipped, cut, spliced, inserted); and valid dag-cbor of the
 * right shape with one field replaced by an arbitrary value. The property:
 * the decoder returns a value that re-encodes to a valid message, or throws a
 * typed WasmeshError (MalformedMessageError, InvalidReceiptError…). Anything
 * else (a TypeError, a RangeError, a hang) is a bug: on the wire it would be a
 * crash or a stalled stream.
 *
 * Used by test/fuzz.test.ts (a short run) and scripts/fuzz/run.ts (`npm run fuzz`).
 */
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { DEFAULT_LIMITS } from '../../protocol/constants.ts'
import { WasmeshError } from '../../protocol/errors.ts'
import { decodeAdvert, encodeAdvert, type CapacityAdvert } from '../../protocol/wire/advert.ts'
import { contentHash, decodeCbor, encodeCbor } from '../../protocol/wire/cbor.ts'
import { decodeJob, encodeJob } from '../../protocol/wire/job.ts'
import { merkleRootOf } from '../../protocol/wire/merkle.ts'
import { decodeRequest, decodeResponse, encodeMessage } from '../../protocol/wire/messages.ts'
import { decodeSignedReceipt, encodeSignedReceipt, signReceipt, signReceipts, verifyReceipt, type Receipt } from '../../protocol/wire/receipt.ts'
import { decodePinRecord, decodeSigned, decodeStoreRequest, decodeStoreResponse, encodePinRecord, encodeSigned, encodeStoreMessage, signPinOrder, signStorageReceipt, verifyPinOrder, verifyStorageReceipt, type PinOrder } from '../../protocol/wire/storage.ts'
import { decodeSignedManifest, encodeSignedManifest, signManifest, verifyManifest } from '../../protocol/wire/function.ts'

/** A decoder under test: what it decodes, and valid encodings to mutate. */
export interface DecoderTarget {
  name: string
  /** Decodes (and, for receipts, verifies) the bytes; must return or throw a WasmeshError. */
  decode: (bytes: Uint8Array) => unknown
  /** Valid encodings of this kind of message. */
  seeds: Uint8Array[]
}

/** What one target's run found. */
export interface DecoderReport {
  name: string
  inputs: number
  accepted: number
  rejected: number
  /** The first failure: the input (hex) and what was thrown. */
  failure?: string
}

const encoder = new TextEncoder()

async function rawCid (text: string): Promise<CID> {
  return CID.createV1(0x55, await sha256.digest(encoder.encode(text)))
}

/** The decoders and valid seeds for each. */
export async function decoderTargets (): Promise<DecoderTarget[]> {
  const key = await generateKeyPair('Ed25519')
  const worker = peerIdFromPrivateKey(key).toString()
  const moduleCid = await rawCid('module')
  const job = await encodeJob({ v: 1, module: moduleCid, abi: 'wasi', args: ['a', 'b'], env: { K: 'v' }, input: encoder.encode('hello'), limits: { ...DEFAULT_LIMITS }, redundancy: 3, nonce: new Uint8Array([1, 2, 3]), mounts: [{ path: '/data', cid: moduleCid, writable: false }, { path: '/out', writable: true }] })
  const plainJob = await encodeJob({ v: 1, module: moduleCid, abi: 'direct', args: [], env: {}, input: await rawCid('input'), limits: { ...DEFAULT_LIMITS }, redundancy: 1 })
  const outputs = [0, 1, 2, 3, 4].map(exitCode => encoder.encode(`out ${exitCode}`))
  const hashes = await Promise.all(outputs.map(contentHash))
  const receipt = (exitCode: number): Receipt => ({
    v: 1,
    job: job.cid,
    worker,
    exitCode,
    output: outputs[exitCode] as Uint8Array,
    outputHash: hashes[exitCode] as Uint8Array,
    outputSize: (outputs[exitCode] as Uint8Array).byteLength,
    stderr: new Uint8Array(0),
    stats: { queueMs: 1, fetchMs: 2, compileMs: 3, execMs: 4, moduleCached: false },
    timestamp: 1_700_000_000_000,
    ...(exitCode === 1 ? { error: { name: 'WasmTrapError', message: 'unreachable' }, mounts: [{ path: '/out', cid: moduleCid }] } : {})
  })
  const single = encodeSignedReceipt(await signReceipt(receipt(0), key))
  const batch = (await signReceipts([0, 1, 2, 3, 4].map(receipt), key)).map(encodeSignedReceipt)
  const advert: CapacityAdvert = { v: 1, slots: { total: 4, free: 2 }, memoryBytes: 2 ** 30, storageBytes: 0, abis: ['wasi', 'direct'], cached: [moduleCid], addrs: [new Uint8Array([4, 127, 0, 0, 1, 6, 0x10, 0x01])], version: '0.1.0', platform: 'node', seq: 1_700_000_000_000, intervalMs: 5000 }
  const requests = [encodeMessage({ type: 'submit', id: 7, job: job.bytes }), encodeMessage({ type: 'cancel', id: 9 })]
  const batchRequests = [
    encodeMessage({ type: 'submitMany', id: 0, jobs: [{ id: 10, job: job.bytes }, { id: 11, job: plainJob.bytes }] }),
    encodeMessage({ type: 'submitMany', id: 0, jobs: [{ id: 12, job: plainJob.bytes }, { id: 13, job: plainJob.bytes }, { id: 14, job: job.bytes }] })
  ]
  const chunkRequests = [
    encodeMessage({ type: 'submitChunk', id: 15, jobs: [job.bytes, plainJob.bytes] }),
    encodeMessage({ type: 'submitChunk', id: 16, jobs: [plainJob.bytes, plainJob.bytes, job.bytes, plainJob.bytes] })
  ]
  const responses = [
    encodeMessage({ type: 'credit', id: 0, window: 16 }),
    encodeMessage({ type: 'accepted', id: 3 }),
    encodeMessage({ type: 'busy', id: 4 }),
    encodeMessage({ type: 'receipt', id: 5, receipt: single }),
    encodeMessage({ type: 'error', id: 6, error: { name: 'ContentFetchError', message: 'nobody sent it' } }),
    encodeMessage({ type: 'alive', id: 0 }),
    encodeMessage({ type: 'chunk', id: 7, results: [...batch.slice(0, 3).map(receipt => ({ receipt })), { error: { name: 'ContentFetchError', message: 'nobody sent it' } }] })
  ]
  const order: PinOrder = { v: 1, cid: moduleCid, size: 1234, replicas: 3, until: 1_800_000_000_000, owner: worker, signer: worker, renewers: [worker], at: 1_700_000_000_000 }
  const signedOrder = await signPinOrder(order, key)
  const storageReceipt = await signStorageReceipt({ v: 1, holder: worker, cid: moduleCid, size: 1234, until: 1_800_000_000_000, owner: worker, at: 1_700_000_000_000 }, key)
  const storeRequests = [
    encodeStoreMessage({ type: 'pin', order: signedOrder, holders: [worker] }),
    encodeStoreMessage({ type: 'status', cid: moduleCid }),
    encodeStoreMessage({ type: 'challenge', cid: moduleCid, block: moduleCid, nonce: new Uint8Array(16) }),
    encodeStoreMessage({ type: 'holders', cid: moduleCid, holders: [worker] }),
    encodeStoreMessage({ type: 'renew', order: signedOrder })
  ]
  const storeResponses = [
    encodeStoreMessage({ type: 'pinned', receipt: storageReceipt }),
    encodeStoreMessage({ type: 'holding', receipt: storageReceipt, holders: [worker], order: signedOrder }),
    encodeStoreMessage({ type: 'absent' }),
    encodeStoreMessage({ type: 'proof', hash: new Uint8Array(32) }),
    encodeStoreMessage({ type: 'ok' }),
    encodeStoreMessage({ type: 'error', error: { name: 'StorageFullError', message: 'full' } })
  ]
  const manifest = encodeSignedManifest(await signManifest({ v: 1, owner: worker, name: 'markdown', version: 3, module: moduleCid, abi: 'wagi', limits: { ...DEFAULT_LIMITS }, env: { MODE: 'fast' }, timestamp: 1_700_000_000_000 }, key))
  return [
    {
      name: 'store request',
      decode: decodeStoreRequest,
      seeds: storeRequests
    },
    { name: 'store response', decode: decodeStoreResponse, seeds: storeResponses },
    { name: 'pin record', decode: decodePinRecord, seeds: [encodePinRecord({ v: 1, order: signedOrder, receipt: storageReceipt, holders: [worker] })] },
    { name: 'pin order (verified)', decode: async bytes => verifyPinOrder(decodeSigned(bytes, 'pin order')), seeds: [encodeSigned(signedOrder)] },
    { name: 'storage receipt (verified)', decode: async bytes => verifyStorageReceipt(decodeSigned(bytes, 'storage receipt')), seeds: [encodeSigned(storageReceipt)] },
    { name: 'function manifest (verified)', decode: async bytes => verifyManifest(decodeSignedManifest(bytes)), seeds: [manifest] },
    { name: 'dag-cbor', decode: bytes => decodeCbor(bytes, 'fuzz'), seeds: [job.bytes, single, ...responses] },
    { name: 'job spec', decode: async bytes => decodeJob(bytes), seeds: [job.bytes, plainJob.bytes] },
    { name: 'job request', decode: decodeRequest, seeds: [...requests, ...batchRequests, ...chunkRequests] },
    { name: 'job request (submitMany)', decode: decodeRequest, seeds: batchRequests },
    { name: 'job request (submitChunk)', decode: decodeRequest, seeds: chunkRequests },
    { name: 'job response', decode: decodeResponse, seeds: responses },
    { name: 'capacity advert', decode: decodeAdvert, seeds: [encodeAdvert(advert), encodeAdvert({ ...advert, cached: [], addrs: [], slots: { total: 0, free: 0 } })] },
    {
      name: 'signed receipt (single and batch, verified)',
      decode: async bytes => verifyReceipt(decodeSignedReceipt(bytes)),
      seeds: [single, ...batch]
    },
    {
      name: 'merkle batch proof',
      // the batch proof's path walked up to a root, as verifyReceipt does before checking the root's signature
      decode: async bytes => {
        const signed = decodeSignedReceipt(bytes)
        return signed.batch == null ? undefined : merkleRootOf(signed.payload, signed.batch.index, signed.batch.count, signed.batch.path)
      },
      seeds: batch
    }
  ]
}

/** Bytes derived from a seed: a few mutations stacked. */
function mutated (seeds: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.nat(255) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('drop' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) })
  )
  return fc.tuple(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([seed, mutations]) => {
    let bytes = seed
    for (const m of mutations) {
      const at = bytes.length === 0 ? 0 : m.at % bytes.length
      switch (m.kind) {
        case 'flip': bytes = new Uint8Array(bytes); bytes[at] = (bytes[at] ?? 0) ^ (1 << m.bit); break
        case 'set': bytes = new Uint8Array(bytes); bytes[at] = m.byte; break
        case 'cut': bytes = bytes.subarray(0, at); break
        case 'drop': bytes = concatBytes(bytes.subarray(0, at), bytes.subarray(at + m.length)); break
        case 'insert': bytes = concatBytes(bytes.subarray(0, at), m.bytes, bytes.subarray(at)); break
        case 'repeat': bytes = concatBytes(bytes.subarray(0, at + m.length), bytes.subarray(at)); break
      }
    }
    return bytes
  })
}

function concatBytes (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

/** dag-cbor values of any shape (CIDs and bytes included), encoded. */
const cborValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>(tie => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string(),
    fc.uint8Array({ maxLength: 40 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 12 }), tie('value'), { maxKeys: 4 })
  )
})).value

/** A valid message's top-level record with one field replaced, removed or added. */
function reshaped (seeds: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const records = seeds.map(seed => { try { return decodeCbor(seed, 'seed') } catch { return undefined } }).filter((v): v is Record<string, unknown> => v != null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array))
  if (records.length === 0) {
    return fc.constant(new Uint8Array(0))
  }
  return fc.tuple(fc.constantFrom(...records), fc.nat(), fc.option(cborValue), fc.string({ maxLength: 12 })).map(([record, at, value, extraKey]) => {
    const keys = Object.keys(record)
    const copy: Record<string, unknown> = { ...record }
    const key = at % (keys.length + 1) === keys.length ? extraKey : keys[at % (keys.length + 1)] as string
    if (value == null) {
      delete copy[key]
    } else {
      copy[key] = value
    }
    try {
      return encodeCbor(copy)
    } catch {
      return encodeCbor(record) // a value dag-cbor cannot encode (e.g. -0): fall back to the seed
    }
  })
}

/** Every kind of input for one target. */
export function inputsFor (target: DecoderTarget): fc.Arbitrary<Uint8Array> {
  // copies: cborg hands out Node Buffers, whose slice() is a view, and no mutation may reach a seed
  const seeds = target.seeds.map(seed => new Uint8Array(seed))
  return fc.oneof(
    fc.constantFrom(...seeds),
    fc.uint8Array({ maxLength: 512 }),
    mutated(seeds),
    reshaped(seeds),
    cborValue.map(v => { try { return encodeCbor(v) } catch { return new Uint8Array([0xf6]) } })
  )
}

/** Runs `runs` inputs through one decoder; a non-WasmeshError or a decode slower than `maxMs` fails the run. */
export async function fuzzDecoder (target: DecoderTarget, runs: number, seed: number, maxMs = 2000): Promise<DecoderReport> {
  const report: DecoderReport = { name: target.name, inputs: 0, accepted: 0, rejected: 0 }
  const result = await fc.check(fc.asyncProperty(inputsFor(target), async bytes => {
    report.inputs++
    const started = performance.now()
    try {
      await target.decode(bytes)
      report.accepted++
    } catch (err) {
      if (!(err instanceof WasmeshError)) {
        throw err
      }
      report.rejected++
    }
    const took = performance.now() - started
    if (took > maxMs) {
      throw new Error(`decoding took ${Math.round(took)} ms`)
    }
  }), { numRuns: runs, seed, endOnFailure: true })
  if (result.failed) {
    const input = result.counterexample?.[0] as Uint8Array | undefined
    report.failure = `seed ${seed}, input ${input == null ? '?' : Buffer.from(input).toString('hex')}: ${String(result.errorInstance)}`
  }
  return report
}
