import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { contentHash, decodeCbor, encodeCbor } from '../protocol/wire/cbor.ts'
import { DEFAULT_LIMITS } from '../protocol/constants.ts'
import { encodeJob } from '../protocol/wire/job.ts'
import { checkOutput, decodeSignedReceipt, encodeSignedReceipt, receiptSucceeded, signReceipt, signReceipts, verifyReceipt, type Receipt, type SignedReceipt } from '../protocol/wire/receipt.ts'
import { ReceiptBatcher } from '../protocol/worker/receipt-batcher.ts'
import type { PrivateKey } from '@libp2p/interface'

const encoder = new TextEncoder()
/** A well-known RSA peer id: its key is only a hash, not embedded, so it cannot verify anything. */
const RSA_PEER_ID = 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'

let key: PrivateKey
let otherKey: PrivateKey
let worker: string
let otherWorker: string
let jobCid: CID
let otherJobCid: CID

async function receiptFor (overrides: Partial<Receipt> = {}): Promise<Receipt> {
  const output = encoder.encode('HELLO')
  return {
    v: 1,
    job: jobCid,
    worker,
    exitCode: 0,
    output,
    outputHash: await contentHash(output),
    outputSize: output.byteLength,
    stderr: encoder.encode('a warning\n'),
    stats: { fetchMs: 1.5, compileMs: 2.25, execMs: 0.75, moduleCached: false },
    timestamp: 1_700_000_000_000,
    ...overrides
  }
}

/** Passes when verification fails with one of the errors a bad receipt may give, and nothing else. */
async function rejectsReceipt (promise: Promise<unknown>, names: readonly string[] = ['InvalidReceiptError', 'MalformedMessageError'], label = ''): Promise<void> {
  await assert.rejects(promise, (err: Error) => {
    assert.ok(names.includes(err.name), `${label} expected ${names.join(' or ')}, got ${err.name}: ${err.message}`)
    return true
  })
}

before(async () => {
  key = await generateKeyPair('Ed25519')
  otherKey = await generateKeyPair('Ed25519')
  worker = peerIdFromPrivateKey(key).toString()
  otherWorker = peerIdFromPrivateKey(otherKey).toString()
  const module = CID.createV1(0x55, await sha256.digest(encoder.encode('module')))
  const spec = { v: 1 as const, module, abi: 'wasi' as const, args: [], env: {}, input: encoder.encode('hello'), limits: { ...DEFAULT_LIMITS }, redundancy: 1 }
  jobCid = (await encodeJob(spec)).cid
  otherJobCid = (await encodeJob({ ...spec, input: encoder.encode('hellp') })).cid
})

describe('receipts', () => {
  it('a signed receipt verifies, and gives back what was signed', async () => {
    const receipt = await receiptFor()
    const signed = await signReceipt(receipt, key)
    const verified = await verifyReceipt(signed, { job: jobCid, worker })
    assert.deepEqual(verified.receipt, receipt)
    assert.equal(verified.signed, signed)
    assert.ok(receiptSucceeded(verified.receipt))
    // without expectations, too
    assert.deepEqual((await verifyReceipt(signed)).receipt, receipt)
  })

  it('a failed run with an error and a CID output verifies too', async () => {
    const output = CID.createV1(0x55, await sha256.digest(encoder.encode('big output')))
    const receipt = await receiptFor({ exitCode: -1, error: { name: 'TimeLimitError', message: 'too slow' }, output, outputSize: 10 })
    const verified = await verifyReceipt(await signReceipt(receipt, key), { job: jobCid, worker })
    assert.deepEqual(verified.receipt, receipt)
    assert.equal(receiptSucceeded(verified.receipt), false)
  })

  it('signReceipt refuses an invalid receipt', async () => {
    await rejectsReceipt(signReceipt({ ...await receiptFor(), exitCode: -2 }, key), ['MalformedMessageError'])
    await rejectsReceipt(signReceipt({ ...await receiptFor(), worker: 'x'.repeat(129) }, key), ['MalformedMessageError'])
  })

  it('altering any single byte of the payload makes verification fail', async () => {
    const signed = await signReceipt(await receiptFor(), key)
    const { payload } = signed
    assert.ok(payload.byteLength > 100)
    for (let i = 0; i < payload.byteLength; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const altered = new Uint8Array(payload)
        altered[i] = (altered[i] as number) ^ mask
        await rejectsReceipt(verifyReceipt({ payload: altered, signature: signed.signature }), undefined, `payload byte ${i} ^ 0x${mask.toString(16)}:`)
      }
    }
  })

  it('altering any single byte of the signature makes verification fail with InvalidReceiptError', async () => {
    const signed = await signReceipt(await receiptFor(), key)
    assert.equal(signed.signature.byteLength, 64)
    for (let i = 0; i < signed.signature.byteLength; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const signature = new Uint8Array(signed.signature)
        signature[i] = (signature[i] as number) ^ mask
        await rejectsReceipt(verifyReceipt({ payload: signed.payload, signature }), ['InvalidReceiptError'], `signature byte ${i} ^ 0x${mask.toString(16)}:`)
      }
    }
  })

  it('a signature of the wrong length is an InvalidReceiptError', async () => {
    const signed = await signReceipt(await receiptFor(), key)
    for (const signature of [signed.signature.subarray(0, 63), new Uint8Array(0), new Uint8Array([...signed.signature, 0])]) {
      await rejectsReceipt(verifyReceipt({ payload: signed.payload, signature }), ['InvalidReceiptError'], `signature of ${signature.byteLength} bytes:`)
    }
  })

  it('a signature of the wrong length is refused, whatever the error', async () => {
    const signed = await signReceipt(await receiptFor(), key)
    await assert.rejects(verifyReceipt({ payload: signed.payload, signature: signed.signature.subarray(0, 63) }))
  })

  it('a receipt re-encoded with another worker peer id does not verify', async () => {
    const signed = await signReceipt(await receiptFor(), key)
    const record = decodeCbor(signed.payload, 'receipt') as Record<string, unknown>
    assert.equal(record.worker, worker)
    const payload = encodeCbor({ ...record, worker: otherWorker })
    await rejectsReceipt(verifyReceipt({ payload, signature: signed.signature }), ['InvalidReceiptError'])
    await rejectsReceipt(verifyReceipt({ payload, signature: signed.signature }, { worker: otherWorker }), ['InvalidReceiptError'])
  })

  it('a receipt naming one worker but signed by another does not verify', async () => {
    const forged = await signReceipt(await receiptFor({ worker: otherWorker }), key)
    await rejectsReceipt(verifyReceipt(forged), ['InvalidReceiptError'])
  })

  it('a valid receipt replayed for another job is refused', async () => {
    const signed = await signReceipt(await receiptFor(), key)
    await verifyReceipt(signed, { job: jobCid })
    await rejectsReceipt(verifyReceipt(signed, { job: otherJobCid }), ['InvalidReceiptError'])
  })

  it('a valid receipt from a worker other than the one asked is refused', async () => {
    const signed = await signReceipt(await receiptFor(), key)
    await rejectsReceipt(verifyReceipt(signed, { worker: otherWorker }), ['InvalidReceiptError'])
    await rejectsReceipt(verifyReceipt(signed, { job: jobCid, worker: otherWorker }), ['InvalidReceiptError'])
  })

  it('an inline output that does not match outputHash is refused', async () => {
    const wrongOutput = await receiptFor({ output: encoder.encode('HELLP') })
    await rejectsReceipt(verifyReceipt(await signReceipt(wrongOutput, key)), ['InvalidReceiptError'])
    const wrongSize = await receiptFor({ outputSize: 6 })
    await rejectsReceipt(verifyReceipt(await signReceipt(wrongSize, key)), ['InvalidReceiptError'])
    const wrongHash = await receiptFor({ outputHash: await contentHash(encoder.encode('hello')) })
    await rejectsReceipt(verifyReceipt(await signReceipt(wrongHash, key)), ['InvalidReceiptError'])
  })

  it('checkOutput compares fetched output with the receipt', async () => {
    const receipt = await receiptFor()
    await checkOutput(receipt, encoder.encode('HELLO'))
    await rejectsReceipt(checkOutput(receipt, encoder.encode('HELLP')), ['InvalidReceiptError'])
    await rejectsReceipt(checkOutput(receipt, encoder.encode('HELLO!')), ['InvalidReceiptError'])
  })

  it('a worker that is not a peer id is refused', async () => {
    for (const name of ['not-a-peer-id', '', worker.slice(0, -1), jobCid.toString()]) {
      await rejectsReceipt(verifyReceipt(await signReceipt(await receiptFor({ worker: name }), key)), ['InvalidReceiptError'], `worker "${name}":`)
    }
  })

  it('a worker peer id that does not embed its key is refused', async () => {
    await rejectsReceipt(verifyReceipt(await signReceipt(await receiptFor({ worker: RSA_PEER_ID }), key)), ['InvalidReceiptError'])
  })

  it('a secp256k1 worker can sign receipts that verify', async () => {
    const secp = await generateKeyPair('secp256k1')
    const secpWorker = peerIdFromPrivateKey(secp).toString()
    const signed = await signReceipt(await receiptFor({ worker: secpWorker }), secp)
    await verifyReceipt(signed, { worker: secpWorker })
    await rejectsReceipt(verifyReceipt({ payload: signed.payload, signature: signed.signature.subarray(1) }), ['InvalidReceiptError'])
  })

  it('a signature over the payload without the domain separator does not verify', async () => {
    const signed = await signReceipt(await receiptFor(), key)
    const bare = await key.sign(signed.payload)
    await rejectsReceipt(verifyReceipt({ payload: signed.payload, signature: bare }), ['InvalidReceiptError'])
  })

  it('payloads that are not receipts are refused as malformed', async () => {
    const signed = await signReceipt(await receiptFor(), key)
    const record = decodeCbor(signed.payload, 'receipt') as Record<string, unknown>
    for (const payload of [
      new Uint8Array([0xff]),
      encodeCbor([1, 2]),
      encodeCbor({ ...record, v: 2 }),
      encodeCbor({ ...record, extra: 1 }),
      encodeCbor({ ...record, stats: { ...(record.stats as object), gpuMs: 1 } }),
      encodeCbor({ ...record, stats: { ...(record.stats as object), execMs: -1 } })
    ]) {
      await rejectsReceipt(verifyReceipt({ payload, signature: signed.signature }), ['MalformedMessageError'])
    }
  })
})

describe('signed receipt encoding', () => {
  let signed: SignedReceipt

  before(async () => {
    signed = await signReceipt(await receiptFor(), key)
  })

  it('round-trips through encodeSignedReceipt and decodeSignedReceipt, and still verifies', async () => {
    const decoded = decodeSignedReceipt(encodeSignedReceipt(signed))
    assert.deepEqual(Object.keys(decoded).sort(), ['payload', 'signature'])
    assert.deepEqual(new Uint8Array(decoded.payload), new Uint8Array(signed.payload))
    assert.deepEqual(new Uint8Array(decoded.signature), new Uint8Array(signed.signature))
    const verified = await verifyReceipt(decoded, { job: jobCid, worker })
    assert.equal(verified.receipt.worker, worker)
  })

  it('decodeSignedReceipt refuses malformed envelopes', () => {
    for (const bytes of [
      new Uint8Array([0x00, 0xff]),
      encodeCbor([signed.payload, signed.signature]),
      encodeCbor({ payload: signed.payload }),
      encodeCbor({ signature: signed.signature }),
      encodeCbor({ ...signed, worker }),
      encodeCbor({ payload: 'text', signature: signed.signature }),
      encodeCbor({ payload: signed.payload, signature: new Uint8Array(1025) })
    ]) {
      assert.throws(() => decodeSignedReceipt(bytes), { name: 'MalformedMessageError' })
    }
  })
})

describe('receipts signed in a batch (one signature over a Merkle root)', () => {
  async function batchOf (count: number): Promise<{ receipts: Receipt[], signed: SignedReceipt[] }> {
    const receipts = await Promise.all(Array.from({ length: count }, async (_, i) => receiptFor({ output: encoder.encode(`out ${i}`), outputHash: await contentHash(encoder.encode(`out ${i}`)), outputSize: encoder.encode(`out ${i}`).byteLength, timestamp: 1_700_000_000_000 + i })))
    return { receipts, signed: await signReceipts(receipts, key) }
  }

  it('every receipt of batches of 1 to 17 verifies alone, with one signature shared by the batch', async () => {
    for (let count = 1; count <= 17; count++) {
      const { receipts, signed } = await batchOf(count)
      assert.equal(signed.length, count)
      assert.equal(new Set(signed.map(s => toHex(s.signature))).size, 1, 'one signature for the whole batch')
      assert.equal(signed[0]?.batch == null, count === 1, 'a batch of one is a plain signed receipt')
      for (const [i, one] of signed.entries()) {
        // through the wire format, as a requester or `wasmesh verify` gets it
        const verified = await verifyReceipt(decodeSignedReceipt(encodeSignedReceipt(one)), { job: jobCid, worker })
        assert.deepEqual(verified.receipt.output, receipts[i]?.output)
      }
    }
  })

  it('a receipt with an altered payload, path, index or tree shape, or a signature over another batch, does not verify', async () => {
    const { signed } = await batchOf(6)
    const other = await batchOf(5)
    const one = signed[2] as SignedReceipt & { batch: NonNullable<SignedReceipt['batch']> }
    const flipped = (bytes: Uint8Array, at: number): Uint8Array => { const copy = new Uint8Array(bytes); copy[at] = (copy[at] as number) ^ 1; return copy }
    const forgeries: Array<[string, SignedReceipt]> = [
      ['payload of another leaf', { ...one, payload: (signed[3] as SignedReceipt).payload }],
      ['a flipped path hash', { ...one, batch: { ...one.batch, path: [flipped(one.batch.path[0] as Uint8Array, 5), ...one.batch.path.slice(1)] } }],
      ['a path cut short', { ...one, batch: { ...one.batch, path: one.batch.path.slice(1) } }],
      ['a path too long', { ...one, batch: { ...one.batch, path: [...one.batch.path, one.batch.path[0] as Uint8Array] } }],
      ['another index', { ...one, batch: { ...one.batch, index: 3 } }],
      // (count only steers the hashing: a count giving the same shape leads to the same root, and binds nothing)
      ['a count of another shape', { ...one, batch: { ...one.batch, count: 3 } }],
      ['the signature of another batch', { ...one, signature: (other.signed[0] as SignedReceipt).signature }],
      ['no proof at all', { payload: one.payload, signature: one.signature }]
    ]
    for (const [label, forged] of forgeries) {
      await rejectsReceipt(verifyReceipt(forged, { job: jobCid, worker }), undefined, label)
    }
  })

  it('a single receipt signature does not pass as a batch root, nor a batch root as a single receipt', async () => {
    const single = await signReceipt(await receiptFor(), key)
    await rejectsReceipt(verifyReceipt({ ...single, batch: { index: 0, count: 2, path: [new Uint8Array(32)] } }))
    // a batch root signed as if it were a payload: the domains differ, so it is refused
    const { signed } = await batchOf(2)
    await rejectsReceipt(verifyReceipt({ payload: (signed[0] as SignedReceipt).payload, signature: (signed[0] as SignedReceipt).signature }))
  })

  it('decodeSignedReceipt refuses malformed batch proofs', async () => {
    const { signed } = await batchOf(3)
    const one = signed[0] as SignedReceipt & { batch: NonNullable<SignedReceipt['batch']> }
    for (const batch of [
      { index: 0, count: 1, path: [] },
      { index: 3, count: 3, path: one.batch.path },
      { index: 0, count: 3, path: [new Uint8Array(31), new Uint8Array(32)] },
      { index: 0, count: 3, path: Array.from({ length: 11 }, () => new Uint8Array(32)) },
      { index: 0, count: 3, path: 'nope' },
      { index: 0, count: 3, path: one.batch.path, extra: 1 }
    ]) {
      assert.throws(() => decodeSignedReceipt(encodeCbor({ payload: one.payload, signature: one.signature, batch })), { name: 'MalformedMessageError' }, JSON.stringify(batch))
    }
  })
})

function toHex (bytes: Uint8Array): string {
  return Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('')
}

describe('ReceiptBatcher', () => {
  it('signs at once when nothing else is running, and shares one signature among receipts that finish while jobs are running', async () => {
    let backlog = { running: 0, queued: 0 }
    const batcher = new ReceiptBatcher(key, () => backlog)
    const alone = await batcher.sign(await receiptFor())
    assert.equal(alone.batch, undefined)
    backlog = { running: 1, queued: 3 }
    const together = await Promise.all([1, 2, 3, 4, 5].map(async i => batcher.sign(await receiptFor({ timestamp: 1_700_000_000_000 + i }))))
    assert.equal(new Set(together.map(s => toHex(s.signature))).size, 1)
    assert.deepEqual(together.map(s => s.batch?.index), [0, 1, 2, 3, 4])
    for (const signed of together) {
      await verifyReceipt(signed, { job: jobCid, worker })
    }
  })
})
