import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { decodeAdvert, encodeAdvert, validateAdvert, type CapacityAdvert } from '../protocol/wire/advert.ts'
import { cborCid, encodeCbor } from '../protocol/wire/cbor.ts'
import { DEFAULT_LIMITS, LIMIT_BOUNDS, MAX_ADVERT_BYTES, MAX_ADVERTISED_ADDRS, MAX_ADVERTISED_MODULES, MAX_ARGS, MAX_CHUNK_ITEMS, MAX_ENV, MAX_INLINE_BYTES, MAX_MESSAGE_BYTES, MAX_REDUNDANCY, MAX_STRING_LENGTH, MAX_SUBMIT_BATCH } from '../protocol/constants.ts'
import { decodeJob, encodeJob, validateJob, type JobSpec } from '../protocol/wire/job.ts'
import { decodeRequest, decodeResponse, encodeMessage, type JobRequest, type JobResponse } from '../protocol/wire/messages.ts'

const encoder = new TextEncoder()
const RAW_CODE = 0x55

/** A deterministic PRNG (mulberry32), so a failing fuzz case can be reproduced from its seed. */
function prng (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function randomBytes (random: () => number, length: number): Uint8Array {
  const bytes = new Uint8Array(length)
  for (let i = 0; i < length; i++) {
    bytes[i] = Math.floor(random() * 256)
  }
  return bytes
}

async function rawCid (text: string): Promise<CID> {
  return CID.createV1(RAW_CODE, await sha256.digest(encoder.encode(text)))
}

const moduleCid = await rawCid('module')
const inputCid = await rawCid('input')

function validSpec (overrides: Partial<JobSpec> = {}): JobSpec {
  return {
    v: 1,
    module: moduleCid,
    abi: 'wasi',
    args: ['--flag', 'value'],
    env: { HOME: '/', LANG: 'C' },
    input: encoder.encode('hello'),
    limits: { ...DEFAULT_LIMITS },
    redundancy: 1,
    ...overrides
  }
}

/** A record with fields replaced or (undefined) removed, encoded without validation. */
function encodeWith (base: object, overrides: Record<string, unknown>): Uint8Array {
  const record: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) {
      delete record[key]
    } else {
      record[key] = value
    }
  }
  return encodeCbor(record)
}

/** A job spec with fields replaced or removed, encoded without validation. */
function rawJob (overrides: Record<string, unknown>): Uint8Array {
  return encodeWith(validSpec(), overrides)
}

function validAdvert (overrides: Partial<CapacityAdvert> = {}): CapacityAdvert {
  return {
    v: 1,
    slots: { total: 4, free: 2 },
    memoryBytes: 1024 * 1024 * 1024,
    storageBytes: 0,
    abis: ['wasi', 'direct'],
    cached: [moduleCid],
    addrs: [new Uint8Array([4, 127, 0, 0, 1, 6, 0x10, 0x00])],
    version: '0.1.0',
    platform: 'node',
    seq: 7,
    intervalMs: 5000,
    ...overrides
  }
}

function rawAdvert (overrides: Record<string, unknown>): Uint8Array {
  return encodeWith(validAdvert(), overrides)
}

async function rejectsMalformed (promise: Promise<unknown>, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: Error) => {
    assert.equal(err.name, 'MalformedMessageError', `expected MalformedMessageError, got ${err.name}: ${err.message}`)
    if (message != null) {
      assert.match(err.message, message)
    }
    return true
  })
}

function throwsMalformed (fn: () => unknown, message?: RegExp): void {
  assert.throws(fn, (err: Error) => {
    assert.equal(err.name, 'MalformedMessageError', `expected MalformedMessageError, got ${err.name}: ${err.message}`)
    if (message != null) {
      assert.match(err.message, message)
    }
    return true
  })
}

describe('job spec codec', () => {
  it('round-trips a spec through encodeJob and decodeJob', async () => {
    const encoded = await encodeJob(validSpec())
    const decoded = await decodeJob(encoded.bytes)
    assert.deepEqual(decoded.spec, encoded.spec)
    assert.deepEqual(decoded.spec, validSpec())
    assert.equal(decoded.cid.toString(), encoded.cid.toString())
    assert.equal(decoded.cid.toString(), (await cborCid(encoded.bytes)).toString())
    assert.deepEqual(encodeCbor(decoded.spec), encoded.bytes)
  })

  it('round-trips a spec with a CID input, a nonce and the direct abi', async () => {
    const spec = validSpec({ input: inputCid, nonce: new Uint8Array([1, 2, 3]), abi: 'direct', args: [], env: {}, redundancy: MAX_REDUNDANCY })
    const encoded = await encodeJob(spec)
    const decoded = await decodeJob(encoded.bytes)
    assert.deepEqual(decoded.spec, spec)
    assert.ok(CID.asCID(decoded.spec.input)?.equals(inputCid))
    assert.equal(decoded.cid.toString(), encoded.cid.toString())
  })

  it('gives equal specs the same CID, whatever the order their maps were built in', async () => {
    const a = await encodeJob(validSpec({ env: { A: '1', B: '2' } }))
    const b = await encodeJob({
      redundancy: 1,
      limits: { outputBytes: DEFAULT_LIMITS.outputBytes, memoryBytes: DEFAULT_LIMITS.memoryBytes, timeoutMs: DEFAULT_LIMITS.timeoutMs },
      input: encoder.encode('hello'),
      env: { B: '2', A: '1' },
      args: ['--flag', 'value'],
      abi: 'wasi',
      module: CID.parse(moduleCid.toString()),
      v: 1
    })
    assert.equal(a.cid.toString(), b.cid.toString())
    assert.deepEqual(a.bytes, b.bytes)
  })

  it('gives different CIDs to specs that differ in input, nonce, args or limits', async () => {
    const base = await encodeJob(validSpec())
    const variants = [
      validSpec({ input: encoder.encode('hellp') }),
      validSpec({ input: inputCid }),
      validSpec({ nonce: new Uint8Array([1]) }),
      validSpec({ nonce: new Uint8Array([2]) }),
      validSpec({ args: ['--flag'] }),
      validSpec({ limits: { ...DEFAULT_LIMITS, timeoutMs: 1000 } }),
      validSpec({ redundancy: 3 })
    ]
    const cids = new Set([base.cid.toString()])
    for (const spec of variants) {
      cids.add((await encodeJob(spec)).cid.toString())
    }
    assert.equal(cids.size, variants.length + 1)
  })

  it('encodeJob refuses an invalid spec', async () => {
    await rejectsMalformed(encodeJob(validSpec({ abi: 'emscripten' as 'wasi' })))
    await rejectsMalformed(encodeJob(validSpec({ redundancy: 0 })))
    await rejectsMalformed(encodeJob(validSpec({ input: new Uint8Array(MAX_INLINE_BYTES + 1) })))
  })

  it('accepts the limit bounds themselves', async () => {
    for (const limits of [
      { timeoutMs: LIMIT_BOUNDS.timeoutMs.min, memoryBytes: LIMIT_BOUNDS.memoryBytes.min, outputBytes: LIMIT_BOUNDS.outputBytes.min },
      { timeoutMs: LIMIT_BOUNDS.timeoutMs.max, memoryBytes: LIMIT_BOUNDS.memoryBytes.max, outputBytes: LIMIT_BOUNDS.outputBytes.max }
    ]) {
      const decoded = await decodeJob(rawJob({ limits }))
      assert.deepEqual(decoded.spec.limits, limits)
    }
  })

  it('accepts inline input of exactly MAX_INLINE_BYTES', async () => {
    const decoded = await decodeJob(rawJob({ input: new Uint8Array(MAX_INLINE_BYTES) }))
    assert.equal((decoded.spec.input as Uint8Array).byteLength, MAX_INLINE_BYTES)
  })

  const rejected: Array<[string, () => Uint8Array, RegExp?]> = [
    ['bytes that are not cbor', () => new Uint8Array([0xff, 0x00, 0x13]), /not valid dag-cbor/],
    ['empty bytes', () => new Uint8Array(0), /not valid dag-cbor/],
    ['text that is not cbor', () => encoder.encode('{"v":1}')],
    ['a cbor list', () => encodeCbor([1, 2, 3]), /must be a map/],
    ['a cbor string', () => encodeCbor('job'), /must be a map/],
    ['a bare CID', () => encodeCbor(moduleCid), /must be a map/],
    ['version 2', () => rawJob({ v: 2 }), /version 2/],
    ['version 0', () => rawJob({ v: 0 }), /version/],
    ['version as a string', () => rawJob({ v: '1' }), /version/],
    ['no version', () => rawJob({ v: undefined }), /version/],
    ['an unknown field', () => rawJob({ priority: 1 }), /unknown field "priority"/],
    ['an unknown limits field', () => rawJob({ limits: { ...DEFAULT_LIMITS, cpu: 1 } }), /unknown field "cpu"/],
    ['an unknown abi', () => rawJob({ abi: 'emscripten' }), /job\.abi/],
    ['an abi that is not a string', () => rawJob({ abi: 1 }), /job\.abi/],
    ['no abi', () => rawJob({ abi: undefined }), /job\.abi/],
    ['a negative timeout', () => rawJob({ limits: { ...DEFAULT_LIMITS, timeoutMs: -1 } }), /timeoutMs/],
    ['a zero timeout', () => rawJob({ limits: { ...DEFAULT_LIMITS, timeoutMs: 0 } }), /timeoutMs/],
    ['a fractional timeout', () => rawJob({ limits: { ...DEFAULT_LIMITS, timeoutMs: 1.5 } }), /timeoutMs/],
    ['an oversize timeout', () => rawJob({ limits: { ...DEFAULT_LIMITS, timeoutMs: LIMIT_BOUNDS.timeoutMs.max + 1 } }), /timeoutMs/],
    ['a memory limit below the minimum', () => rawJob({ limits: { ...DEFAULT_LIMITS, memoryBytes: LIMIT_BOUNDS.memoryBytes.min - 1 } }), /memoryBytes/],
    ['an oversize memory limit', () => rawJob({ limits: { ...DEFAULT_LIMITS, memoryBytes: LIMIT_BOUNDS.memoryBytes.max + 1 } }), /memoryBytes/],
    ['a negative output limit', () => rawJob({ limits: { ...DEFAULT_LIMITS, outputBytes: -1 } }), /outputBytes/],
    ['an oversize output limit', () => rawJob({ limits: { ...DEFAULT_LIMITS, outputBytes: LIMIT_BOUNDS.outputBytes.max + 1 } }), /outputBytes/],
    ['a limit beyond 2^53 (bigint)', () => rawJob({ limits: { ...DEFAULT_LIMITS, timeoutMs: 2n ** 60n } }), /timeoutMs/],
    ['a missing limit', () => rawJob({ limits: { timeoutMs: 1000, memoryBytes: DEFAULT_LIMITS.memoryBytes } }), /outputBytes/],
    ['limits that are not a map', () => rawJob({ limits: [1, 2, 3] }), /job\.limits/],
    ['args that are numbers', () => rawJob({ args: [1, 2] }), /job\.args\[0\]/],
    ['args with one non-string', () => rawJob({ args: ['a', encoder.encode('b')] }), /job\.args\[1\]/],
    ['args that are a string', () => rawJob({ args: 'a b' }), /job\.args/],
    ['too many args', () => rawJob({ args: Array.from({ length: MAX_ARGS + 1 }, () => 'a') }), /job\.args/],
    ['an oversize arg', () => rawJob({ args: ['x'.repeat(MAX_STRING_LENGTH + 1)] }), /job\.args\[0\]/],
    ['an env key with "="', () => rawJob({ env: { 'A=B': 'c' } }), /job\.env key/],
    ['an empty env key', () => rawJob({ env: { '': 'c' } }), /job\.env key/],
    ['an env value that is not a string', () => rawJob({ env: { A: 1 } }), /job\.env\.A/],
    ['too many env entries', () => rawJob({ env: Object.fromEntries(Array.from({ length: MAX_ENV + 1 }, (_, i) => [`K${i}`, 'v'])) }), /job\.env/],
    ['env that is a list', () => rawJob({ env: ['A=1'] }), /job\.env/],
    ['oversize inline input', () => rawJob({ input: new Uint8Array(MAX_INLINE_BYTES + 1) }), /job\.input/],
    ['input that is a string', () => rawJob({ input: 'hello' }), /job\.input/],
    ['a module that is a string', () => rawJob({ module: moduleCid.toString() }), /job\.module/],
    ['a module that is bytes', () => rawJob({ module: moduleCid.bytes }), /job\.module/],
    ['redundancy 0', () => rawJob({ redundancy: 0 }), /job\.redundancy/],
    ['redundancy above the maximum', () => rawJob({ redundancy: MAX_REDUNDANCY + 1 }), /job\.redundancy/],
    ['an oversize nonce', () => rawJob({ nonce: new Uint8Array(65) }), /job\.nonce/],
    ['a nonce that is a number', () => rawJob({ nonce: 1 }), /job\.nonce/],
    ['a null nonce', () => rawJob({ nonce: null }), /job\.nonce/]
  ]
  for (const [what, bytes, message] of rejected) {
    it(`decodeJob rejects ${what}`, async () => {
      await rejectsMalformed(decodeJob(bytes()), message)
    })
  }

  /** The same spec, with the top-level map's keys in reverse canonical order. */
  function reordered (): Uint8Array {
    const entries = Object.entries(validSpec()).sort(([a], [b]) => a.length === b.length ? (a < b ? 1 : -1) : b.length - a.length)
    const parts = [new Uint8Array([0xa0 + entries.length]), ...entries.flatMap(([key, value]) => [encodeCbor(key), encodeCbor(value)])]
    const bytes = new Uint8Array(parts.reduce((n, part) => n + part.byteLength, 0))
    let offset = 0
    for (const part of parts) {
      bytes.set(part, offset)
      offset += part.byteLength
    }
    return bytes
  }

  /** `v: 1` encoded as the float64 1.0; "v" is the shortest key, so it comes first: 0xa8 0x61 0x76 0x01 … */
  function floatVersion (): Uint8Array {
    const canonical = encodeCbor(validSpec())
    assert.deepEqual([...canonical.subarray(1, 4)], [0x61, 0x76, 0x01])
    return new Uint8Array([...canonical.subarray(0, 3), 0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, ...canonical.subarray(4)])
  }

  /** An env map with an own key "__proto__", which a plain object assignment drops. */
  function protoEnvKey (): Uint8Array {
    return rawJob({ env: JSON.parse('{"__proto__": "x", "A": "1"}') as Record<string, string> })
  }

  const nonCanonical: Array<[string, () => Uint8Array]> = [
    ['unsorted map keys', reordered],
    ['an integer encoded as a float', floatVersion],
    ['an env key "__proto__"', protoEnvKey]
  ]
  for (const [what, bytes] of nonCanonical) {
    it(`decodeJob rejects ${what}, so no spec travels under a second CID`, async () => {
      const input = bytes()
      assert.notDeepEqual(input, encodeCbor(validSpec()))
      await assert.rejects(decodeJob(input), { name: 'MalformedMessageError' })
    })
  }
})

describe('capacity advert codec', () => {
  it('round-trips an advert', () => {
    const advert = validAdvert()
    const decoded = decodeAdvert(encodeAdvert(advert))
    assert.deepEqual(decoded, advert)
  })

  it('accepts free === total and the maximum cached list', () => {
    const cached = Array.from({ length: MAX_ADVERTISED_MODULES }, () => moduleCid)
    const decoded = decodeAdvert(encodeAdvert(validAdvert({ slots: { total: 3, free: 3 }, cached })))
    assert.equal(decoded.cached.length, MAX_ADVERTISED_MODULES)
    assert.deepEqual(decoded.slots, { total: 3, free: 3 })
  })

  it('encodeAdvert refuses an invalid advert', () => {
    throwsMalformed(() => encodeAdvert(validAdvert({ slots: { total: 1, free: 2 } })))
  })

  const rejected: Array<[string, () => Uint8Array, RegExp?]> = [
    ['free > total', () => rawAdvert({ slots: { total: 2, free: 3 } }), /advert\.slots\.free/],
    ['negative free slots', () => rawAdvert({ slots: { total: 2, free: -1 } }), /advert\.slots\.free/],
    ['more than 1024 slots', () => rawAdvert({ slots: { total: 1025, free: 0 } }), /advert\.slots\.total/],
    ['an unknown slots field', () => rawAdvert({ slots: { total: 1, free: 1, queued: 0 } }), /unknown field "queued"/],
    ['too many cached CIDs', () => rawAdvert({ cached: Array.from({ length: MAX_ADVERTISED_MODULES + 1 }, () => moduleCid) }), /advert\.cached/],
    ['a cached entry that is not a CID', () => rawAdvert({ cached: [moduleCid.toString()] }), /advert\.cached\[0\]/],
    ['too many addresses', () => rawAdvert({ addrs: Array.from({ length: MAX_ADVERTISED_ADDRS + 1 }, () => new Uint8Array(8)) }), /advert\.addrs/],
    ['an oversize address', () => rawAdvert({ addrs: [new Uint8Array(513)] }), /advert\.addrs\[0\]/],
    ['an unknown abi', () => rawAdvert({ abis: ['wasi', 'emscripten'] }), /advert\.abis\[1\]/],
    ['an unknown platform', () => rawAdvert({ platform: 'deno' }), /advert\.platform/],
    ['a negative seq', () => rawAdvert({ seq: -1 }), /advert\.seq/],
    ['an oversize version string', () => rawAdvert({ version: 'x'.repeat(65) }), /advert\.version/],
    ['version 2', () => rawAdvert({ v: 2 }), /version 2/],
    ['an unknown field', () => rawAdvert({ peer: 'me' }), /unknown field "peer"/],
    ['not cbor', () => new Uint8Array([0xff, 0xfe]), /not valid dag-cbor/],
    ['a list', () => encodeCbor([validAdvert()]), /must be a map/],
    ['oversize bytes, even if they would otherwise be valid', () => rawAdvert({ addrs: Array.from({ length: MAX_ADVERTISED_ADDRS }, () => new Uint8Array(512)) }), /more than the 8192 allowed/],
    ['oversize garbage', () => new Uint8Array(MAX_ADVERT_BYTES + 1), /more than the 8192 allowed/]
  ]
  for (const [what, bytes, message] of rejected) {
    it(`decodeAdvert rejects ${what}`, () => {
      const encoded = bytes()
      throwsMalformed(() => decodeAdvert(encoded), message)
    })
  }

  it('the oversize case really is only too big: its content validates', () => {
    const advert = validAdvert({ addrs: Array.from({ length: MAX_ADVERTISED_ADDRS }, () => new Uint8Array(512)) })
    assert.deepEqual(validateAdvert(advert), advert)
    assert.ok(encodeCbor(advert).byteLength > MAX_ADVERT_BYTES)
  })
})

describe('job protocol messages', () => {
  const job = new Uint8Array([1, 2, 3])
  const requests: JobRequest[] = [
    { type: 'submit', id: 0, job },
    { type: 'submit', id: 2 ** 32 - 1, job: new Uint8Array(0) },
    { type: 'submitMany', id: 0, jobs: [{ id: 1, job }, { id: 2 ** 32 - 1, job: new Uint8Array(0) }] },
    { type: 'submitMany', id: 0, jobs: Array.from({ length: MAX_SUBMIT_BATCH }, (_, i) => ({ id: i + 1, job })) },
    { type: 'submitChunk', id: 7, jobs: [job, new Uint8Array(0)] },
    { type: 'submitChunk', id: 8, jobs: Array.from({ length: MAX_CHUNK_ITEMS }, () => job) },
    { type: 'cancel', id: 42 }
  ]
  const responses: JobResponse[] = [
    { type: 'accepted', id: 1 },
    { type: 'busy', id: 2 },
    { type: 'receipt', id: 3, receipt: new Uint8Array([9, 9]) },
    { type: 'chunk', id: 5, results: [{ receipt: new Uint8Array([9]) }, { error: { name: 'ContentFetchError', message: 'not found' } }] },
    { type: 'chunk', id: 6, results: [] },
    { type: 'error', id: 4, error: { name: 'ContentFetchError', message: 'not found' } },
    { type: 'alive', id: 0 }
  ]

  it('round-trips every request type', () => {
    for (const request of requests) {
      assert.deepEqual(decodeRequest(encodeMessage(request)), request)
    }
  })

  it('round-trips every response type', () => {
    for (const response of responses) {
      assert.deepEqual(decodeResponse(encodeMessage(response)), response)
    }
  })

  it('does not take responses for requests or requests for responses', () => {
    for (const response of responses) {
      throwsMalformed(() => decodeRequest(encodeMessage(response)), /unknown job request type/)
    }
    for (const request of requests) {
      throwsMalformed(() => decodeResponse(encodeMessage(request)), /unknown job response type/)
    }
  })

  const badRequests: Array<[string, () => Uint8Array, RegExp?]> = [
    ['an unknown type', () => encodeCbor({ type: 'run', id: 1 }), /unknown job request type "run"/],
    ['no type', () => encodeCbor({ id: 1 }), /unknown job request type/],
    // String() of this map throws (its toString is not a function): found by the decoder fuzzer, seed 880540119
    ['a type that is a map with a toString key', () => encodeCbor({ type: { toString: false }, id: 1 }), /unknown job request type a map/],
    ['a missing id', () => encodeCbor({ type: 'cancel' }), /request id/],
    ['a negative id', () => encodeCbor({ type: 'cancel', id: -1 }), /request id/],
    ['an id above 2^32 - 1', () => encodeCbor({ type: 'cancel', id: 2 ** 32 }), /request id/],
    ['a fractional id', () => encodeCbor({ type: 'cancel', id: 1.5 }), /request id/],
    ['a string id', () => encodeCbor({ type: 'cancel', id: '1' }), /request id/],
    ['an extra field on submit', () => encodeCbor({ type: 'submit', id: 1, job, priority: 1 }), /unknown field "priority"/],
    ['an extra field on cancel', () => encodeCbor({ type: 'cancel', id: 1, job }), /unknown field "job"/],
    ['a submit without job', () => encodeCbor({ type: 'submit', id: 1 }), /submit\.job/],
    ['a submit whose job is a string', () => encodeCbor({ type: 'submit', id: 1, job: 'abc' }), /submit\.job/],
    ['a submitMany with a non-zero id', () => encodeCbor({ type: 'submitMany', id: 3, jobs: [{ id: 1, job }] }), /submitMany\.id/],
    ['a submitMany without jobs', () => encodeCbor({ type: 'submitMany', id: 0 }), /submitMany\.jobs/],
    ['an empty submitMany', () => encodeCbor({ type: 'submitMany', id: 0, jobs: [] }), /submitMany\.jobs is empty/],
    ['a submitMany beyond the batch limit', () => encodeCbor({ type: 'submitMany', id: 0, jobs: Array.from({ length: MAX_SUBMIT_BATCH + 1 }, (_, i) => ({ id: i + 1, job })) }), /submitMany\.jobs must be a list of at most/],
    ['a submitMany whose jobs are a map', () => encodeCbor({ type: 'submitMany', id: 0, jobs: { id: 1, job } }), /submitMany\.jobs must be a list/],
    ['a submitMany job that is bytes', () => encodeCbor({ type: 'submitMany', id: 0, jobs: [job] }), /submitMany\.jobs\[0\] must be a map/],
    ['a submitMany job with id 0', () => encodeCbor({ type: 'submitMany', id: 0, jobs: [{ id: 1, job }, { id: 0, job }] }), /submitMany\.jobs\[1\]\.id/],
    ['a submitMany job without bytes', () => encodeCbor({ type: 'submitMany', id: 0, jobs: [{ id: 1, job: 'abc' }] }), /submitMany\.jobs\[0\]\.job/],
    ['a submitMany job with an extra field', () => encodeCbor({ type: 'submitMany', id: 0, jobs: [{ id: 1, job, deadline: 5 }] }), /unknown field "deadline"/],
    ['an extra field on submitMany', () => encodeCbor({ type: 'submitMany', id: 0, jobs: [{ id: 1, job }], more: true }), /unknown field "more"/],
    ['a submitChunk without jobs', () => encodeCbor({ type: 'submitChunk', id: 1 }), /submitChunk\.jobs/],
    ['an empty submitChunk', () => encodeCbor({ type: 'submitChunk', id: 1, jobs: [] }), /submitChunk\.jobs is empty/],
    ['a submitChunk beyond the chunk limit', () => encodeCbor({ type: 'submitChunk', id: 1, jobs: Array.from({ length: MAX_CHUNK_ITEMS + 1 }, () => job) }), /submitChunk\.jobs must be a list of at most/],
    ['a submitChunk job that is a map', () => encodeCbor({ type: 'submitChunk', id: 1, jobs: [job, { id: 1, job }] }), /submitChunk\.jobs\[1\]/],
    ['an extra field on submitChunk', () => encodeCbor({ type: 'submitChunk', id: 1, jobs: [job], redundancy: 2 }), /unknown field "redundancy"/],
    ['a list', () => encodeCbor(['submit', 1, job]), /must be a map/],
    ['not cbor', () => new Uint8Array([0x5f, 0x41]), /not valid dag-cbor/],
    ['oversize bytes', () => encodeCbor({ type: 'submit', id: 1, job: new Uint8Array(MAX_MESSAGE_BYTES) }), /more than the/]
  ]
  for (const [what, bytes, message] of badRequests) {
    it(`decodeRequest rejects ${what}`, () => {
      const encoded = bytes()
      throwsMalformed(() => decodeRequest(encoded), message)
    })
  }

  const badResponses: Array<[string, () => Uint8Array, RegExp?]> = [
    ['an unknown type', () => encodeCbor({ type: 'done', id: 1 }), /unknown job response type "done"/],
    ['a missing id', () => encodeCbor({ type: 'busy' }), /response id/],
    ['a negative id', () => encodeCbor({ type: 'busy', id: -5 }), /response id/],
    ['an extra field on accepted', () => encodeCbor({ type: 'accepted', id: 1, slot: 0 }), /unknown field "slot"/],
    ['an extra field on busy', () => encodeCbor({ type: 'busy', id: 1, retryMs: 10 }), /unknown field "retryMs"/],
    ['an extra field on receipt', () => encodeCbor({ type: 'receipt', id: 1, receipt: job, output: job }), /unknown field "output"/],
    ['a receipt that is not bytes', () => encodeCbor({ type: 'receipt', id: 1, receipt: 'x' }), /receipt response/],
    ['an error without error', () => encodeCbor({ type: 'error', id: 1 }), /error response/],
    ['an error with an extra error field', () => encodeCbor({ type: 'error', id: 1, error: { name: 'E', message: 'm', stack: '' } }), /unknown field "stack"/],
    ['an error whose name is not a string', () => encodeCbor({ type: 'error', id: 1, error: { name: 1, message: 'm' } }), /error\.name/],
    ['an error with an oversize name', () => encodeCbor({ type: 'error', id: 1, error: { name: 'E'.repeat(129), message: 'm' } }), /error\.name/],
    ['an error with an oversize message', () => encodeCbor({ type: 'error', id: 1, error: { name: 'E', message: 'm'.repeat(MAX_STRING_LENGTH + 1) } }), /error\.message/],
    ['a chunk without results', () => encodeCbor({ type: 'chunk', id: 1 }), /chunk\.results/],
    ['a chunk beyond the chunk limit', () => encodeCbor({ type: 'chunk', id: 1, results: Array.from({ length: MAX_CHUNK_ITEMS + 1 }, () => ({ receipt: job })) }), /chunk\.results must be a list of at most/],
    ['a chunk result with both a receipt and an error', () => encodeCbor({ type: 'chunk', id: 1, results: [{ receipt: job, error: { name: 'E', message: 'm' } }] }), /unknown field "error"/],
    ['a chunk result with neither', () => encodeCbor({ type: 'chunk', id: 1, results: [{}] }), /chunk\.results\[0\]\.error/],
    ['a chunk receipt that is not bytes', () => encodeCbor({ type: 'chunk', id: 1, results: [{ receipt: 'x' }] }), /chunk\.results\[0\]\.receipt/],
    ['a chunk error whose name is not a string', () => encodeCbor({ type: 'chunk', id: 1, results: [{ error: { name: 1, message: 'm' } }] }), /chunk\.results\[0\]\.error\.name/],
    ['not cbor', () => new Uint8Array([0xff]), /not valid dag-cbor/],
    ['oversize bytes', () => encodeCbor({ type: 'receipt', id: 1, receipt: new Uint8Array(MAX_MESSAGE_BYTES) }), /more than the/]
  ]
  for (const [what, bytes, message] of badResponses) {
    it(`decodeResponse rejects ${what}`, () => {
      const encoded = bytes()
      throwsMalformed(() => decodeResponse(encoded), message)
    })
  }
})

/** Runs `decode` and returns 'ok' or 'malformed'; any other error fails the test, naming the input. */
async function decodeOutcome (decode: (bytes: Uint8Array) => unknown, bytes: Uint8Array, label: string): Promise<'ok' | 'malformed'> {
  try {
    await decode(bytes)
    return 'ok'
  } catch (err) {
    if ((err as Error).name !== 'MalformedMessageError') {
      assert.fail(`${label}: ${Buffer.from(bytes).toString('hex')} threw ${(err as Error).name}: ${(err as Error).message}`)
    }
    return 'malformed'
  }
}

function mutate (random: () => number, bytes: Uint8Array): Uint8Array {
  const copy = [...bytes]
  const edits = 1 + Math.floor(random() * 4)
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random() * (copy.length + 1))
    switch (Math.floor(random() * 5)) {
      case 0: // flip one bit
        if (at < copy.length) {
          copy[at] = (copy[at] as number) ^ (1 << Math.floor(random() * 8))
        }
        break
      case 1: // replace a byte
        if (at < copy.length) {
          copy[at] = Math.floor(random() * 256)
        }
        break
      case 2: // insert a byte
        copy.splice(at, 0, Math.floor(random() * 256))
        break
      case 3: // delete a byte
        copy.splice(at, 1)
        break
      default: // truncate
        copy.length = at
    }
  }
  return new Uint8Array(copy)
}

/** A random CBOR-able value, to swap in for a field of a valid message. */
function randomValue (random: () => number, depth = 0): unknown {
  switch (Math.floor(random() * (depth > 2 ? 8 : 10))) {
    case 0: return Math.floor(random() * 2 ** 20) - 2 ** 10
    case 1: return random() * 1e6 - 5e5
    case 2: return 'x'.repeat(Math.floor(random() * 8))
    case 3: return randomBytes(random, Math.floor(random() * 16))
    case 4: return random() < 0.5
    case 5: return null
    case 6: return moduleCid
    case 7: return 2n ** 64n - 1n
    case 8: return [randomValue(random, depth + 1), randomValue(random, depth + 1)]
    default: return { v: randomValue(random, depth + 1), type: 'submit', '': randomValue(random, depth + 1) }
  }
}

function withRandomField (random: () => number, record: Record<string, unknown>): Uint8Array {
  const copy: Record<string, unknown> = { ...record }
  const keys = [...Object.keys(copy), 'extra']
  const key = keys[Math.floor(random() * keys.length)] as string
  if (random() < 0.15) {
    delete copy[key]
  } else {
    copy[key] = randomValue(random)
  }
  return encodeCbor(copy)
}

describe('decoders under random input', () => {
  const decoders: Array<[string, (bytes: Uint8Array) => unknown, () => Promise<Record<string, unknown>>]> = [
    ['decodeJob', async bytes => {
      const decoded = await decodeJob(bytes)
      validateJob(decoded.spec)
      return decoded
    }, async () => ({ ...validSpec({ nonce: new Uint8Array([7]), input: inputCid }) })],
    ['decodeAdvert', bytes => validateAdvert(decodeAdvert(bytes)), async () => ({ ...validAdvert() })],
    ['decodeRequest', bytes => decodeRequest(bytes), async () => ({ type: 'submit', id: 5, job: (await encodeJob(validSpec())).bytes })],
    ['decodeResponse', bytes => decodeResponse(bytes), async () => ({ type: 'error', id: 5, error: { name: 'WorkerBusyError', message: 'full' } })]
  ]

  for (const [name, decode, sample] of decoders) {
    it(`${name}: 500 random byte strings decode or throw MalformedMessageError`, async () => {
      const random = prng(0x5eed + name.length)
      const outcomes = { ok: 0, malformed: 0 }
      for (let i = 0; i < 500; i++) {
        const bytes = randomBytes(random, Math.floor(random() * 96))
        outcomes[await decodeOutcome(decode, bytes, `${name} random #${i}`)]++
      }
      assert.equal(outcomes.ok + outcomes.malformed, 500)
      assert.ok(outcomes.malformed > 0)
    })

    it(`${name}: 500 byte mutations of a valid encoding decode or throw MalformedMessageError`, async () => {
      const random = prng(0xbeef + name.length)
      const valid = encodeCbor(await sample())
      assert.equal(await decodeOutcome(decode, valid, `${name} original`), 'ok')
      const outcomes = { ok: 0, malformed: 0 }
      for (let i = 0; i < 500; i++) {
        outcomes[await decodeOutcome(decode, mutate(random, valid), `${name} mutation #${i}`)]++
      }
      assert.ok(outcomes.malformed > 0)
    })

    it(`${name}: 500 valid encodings with a field replaced decode or throw MalformedMessageError`, async () => {
      const random = prng(0xf1e1d + name.length)
      const record = await sample()
      const outcomes = { ok: 0, malformed: 0 }
      for (let i = 0; i < 500; i++) {
        outcomes[await decodeOutcome(decode, withRandomField(random, record), `${name} field swap #${i}`)]++
      }
      assert.ok(outcomes.malformed > 0)
    })
  }
})
