import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { fileURLToPath } from 'node:url'
import { DEFAULT_LIMITS } from '../protocol/constants.ts'
import { outcomeKey } from '../protocol/job/outcome.ts'
import { addTree, readTree, treeCid, type TreeBlocks } from '../protocol/store/trees.ts'
import { contentHash, encodeCbor } from '../protocol/wire/cbor.ts'
import { decodeJob, encodeJob, type JobSpec } from '../protocol/wire/job.ts'
import { signReceipt, verifyReceipt, type Receipt } from '../protocol/wire/receipt.ts'
import { createTestnet, type Testnet } from './helpers/testnet.ts'
import type { TreeDirectory } from '../protocol/runtime/executor.ts'
import type { Peer } from '../protocol/peer.ts'

const encoder = new TextEncoder()
const MOUNTS_PROGRAM = fileURLToPath(new URL('fixtures/c/mounts.wasm', import.meta.url))

/** Blocks in a Map: trees without Helia. */
function memoryBlocks (): TreeBlocks & { blocks: Map<string, Uint8Array> } {
  const blocks = new Map<string, Uint8Array>()
  const get = (cid: CID): Uint8Array => {
    const bytes = blocks.get(cid.toString())
    assert.ok(bytes != null, `no block ${cid.toString()}`)
    return bytes
  }
  return {
    blocks,
    addBytes: async bytes => {
      const cid = CID.createV1(raw.code, await sha256.digest(bytes))
      blocks.set(cid.toString(), bytes)
      return cid
    },
    cat: async cid => get(cid),
    getBlock: async cid => get(cid),
    putBlock: async (cid, bytes) => { blocks.set(cid.toString(), bytes) }
  }
}

const file = (text: string): { type: 'file', content: Uint8Array } => ({ type: 'file', content: encoder.encode(text) })
const LIMITS = { maxBytes: 1 << 20, maxEntries: 100 }

async function spec (overrides: Partial<JobSpec> = {}): Promise<JobSpec> {
  const module = CID.createV1(raw.code, await sha256.digest(encoder.encode('module')))
  return { v: 1, module, abi: 'wasi', args: [], env: {}, input: new Uint8Array(0), limits: { ...DEFAULT_LIMITS }, redundancy: 1, ...overrides }
}

describe('trees as UnixFS', () => {
  it('gives a tree one CID whatever order its entries were made in, and reads it back', async () => {
    const blocks = memoryBlocks()
    const a: TreeDirectory = { type: 'directory', entries: { b: file('2'), a: file('1'), sub: { type: 'directory', entries: { link: { type: 'symlink', target: '../a' } } } } }
    const b: TreeDirectory = { type: 'directory', entries: { sub: { type: 'directory', entries: { link: { type: 'symlink', target: '../a' } } }, a: file('1'), b: file('2') } }
    const cid = await addTree(a, blocks)
    assert.equal((await addTree(b, blocks)).toString(), cid.toString())
    assert.notEqual((await addTree({ type: 'directory', entries: { a: file('1'), b: file('3') } }, blocks)).toString(), cid.toString())
    assert.deepEqual(await readTree(cid, blocks, LIMITS, AbortSignal.timeout(1000)), a)
  })

  it('refuses a tree past its byte or entry limit, and names that are not file names', async () => {
    const blocks = memoryBlocks()
    const cid = await addTree({ type: 'directory', entries: { a: file('x'.repeat(100)), b: file('y') } }, blocks)
    await assert.rejects(readTree(cid, blocks, { maxBytes: 50, maxEntries: 100 }, AbortSignal.timeout(1000)), { name: 'FilesystemLimitError' })
    await assert.rejects(readTree(cid, blocks, { maxBytes: 1000, maxEntries: 2 }, AbortSignal.timeout(1000)), { name: 'FilesystemLimitError' })
    const escaping = await addTree({ type: 'directory', entries: { '..': file('x') } }, blocks)
    await assert.rejects(readTree(escaping, blocks, LIMITS, AbortSignal.timeout(1000)), { name: 'InvalidTreeError' })
  })

  it('mounts a file CID as a directory holding it under the CID', async () => {
    const blocks = memoryBlocks()
    const cid = await blocks.addBytes(encoder.encode('alone'))
    assert.deepEqual(await readTree(cid, blocks, LIMITS, AbortSignal.timeout(1000)), { type: 'directory', entries: { [cid.toString()]: file('alone') } })
  })
})

describe('mounts on the wire', () => {
  it('a job CID covers its mounts, and a job without mounts keeps the CID it had before mounts existed', async () => {
    const blocks = memoryBlocks()
    const data = await addTree({ type: 'directory', entries: { a: file('1') } }, blocks)
    const other = await addTree({ type: 'directory', entries: { a: file('2') } }, blocks)
    const plain = await encodeJob(await spec())
    const { cborCid } = await import('../protocol/wire/cbor.ts')
    const before = await spec()
    assert.equal(plain.cid.toString(), (await cborCid(encodeCbor(before))).toString())
    const mounted = await encodeJob(await spec({ mounts: [{ path: '/data', cid: data, writable: false }, { path: '/out', writable: true }] }))
    assert.deepEqual((await decodeJob(mounted.bytes)).spec.mounts, mounted.spec.mounts)
    const cids = new Set([
      plain.cid,
      mounted.cid,
      (await encodeJob(await spec({ mounts: [{ path: '/data', cid: other, writable: false }, { path: '/out', writable: true }] }))).cid,
      (await encodeJob(await spec({ mounts: [{ path: '/data', cid: data, writable: true }, { path: '/out', writable: true }] }))).cid,
      (await encodeJob(await spec({ mounts: [{ path: '/in', cid: data, writable: false }, { path: '/out', writable: true }] }))).cid
    ].map(cid => cid.toString()))
    assert.equal(cids.size, 5)
  })

  it('refuses an empty mount list, mounts on the direct ABI, and unknown mount fields', async () => {
    await assert.rejects(encodeJob(await spec({ mounts: [] })), { name: 'MalformedMessageError' })
    await assert.rejects(encodeJob(await spec({ abi: 'direct', mounts: [{ path: '/out', writable: true }] })), { name: 'MalformedMessageError' })
    await assert.rejects(encodeJob({ ...await spec(), mounts: [{ path: '/out', writable: true, size: 1 }] } as unknown as JobSpec), { name: 'MalformedMessageError' })
  })

  it('signs the final trees\' CIDs in the receipt: altered, they no longer verify; a receipt without them still does', async () => {
    const key = await generateKeyPair('Ed25519')
    const blocks = memoryBlocks()
    const out = await addTree({ type: 'directory', entries: { result: file('42') } }, blocks)
    const forged = await addTree({ type: 'directory', entries: { result: file('43') } }, blocks)
    const output = encoder.encode('ok')
    const receipt: Receipt = {
      v: 1,
      job: (await encodeJob(await spec())).cid,
      worker: peerIdFromPrivateKey(key).toString(),
      exitCode: 0,
      output,
      outputHash: await contentHash(output),
      outputSize: output.byteLength,
      stderr: new Uint8Array(0),
      stats: { fetchMs: 0, compileMs: 0, execMs: 0, moduleCached: false },
      timestamp: 1_700_000_000_000
    }
    const old = await signReceipt(receipt, key)
    assert.equal((await verifyReceipt(old)).receipt.mounts, undefined)
    const signed = await signReceipt({ ...receipt, mounts: [{ path: '/out', cid: out }] }, key)
    assert.equal((await verifyReceipt(signed)).receipt.mounts?.[0]?.cid.toString(), out.toString())
    const swapped = { ...signed, payload: encodeCbor({ ...(await verifyReceipt(signed)).receipt, mounts: [{ path: '/out', cid: forged }] }) }
    await assert.rejects(verifyReceipt(swapped), { name: 'InvalidReceiptError' })
  })

  it('quorum tells outcomes apart by their final trees', async () => {
    const blocks = memoryBlocks()
    const outputHash = await contentHash(encoder.encode('same stdout'))
    const a = await addTree({ type: 'directory', entries: { r: file('1') } }, blocks)
    const b = await addTree({ type: 'directory', entries: { r: file('2') } }, blocks)
    const base = { outputHash, exitCode: 0 }
    assert.equal(outcomeKey({ ...base, mounts: [{ path: '/out', cid: a }] }), outcomeKey({ ...base, mounts: [{ path: '/out', cid: a }] }))
    assert.notEqual(outcomeKey({ ...base, mounts: [{ path: '/out', cid: a }] }), outcomeKey({ ...base, mounts: [{ path: '/out', cid: b }] }))
    assert.notEqual(outcomeKey({ ...base, mounts: [{ path: '/out', cid: a }] }), outcomeKey({ ...base, mounts: [{ path: '/res', cid: a }] }))
    assert.notEqual(outcomeKey(base), outcomeKey({ ...base, mounts: [{ path: '/out', cid: a }] }))
  })
})

describe('mounted jobs on an in-process network, with a worker that plants a file in /out', () => {
  let testnet: Testnet
  let requester: Peer
  before(async () => {
    testnet = await createTestnet(3, { faulty: { count: 1, fault: 'wrong-mount' } })
    requester = await testnet.requester()
  })
  after(async () => { await testnet?.stop() })

  it('accepts the tree the honest majority signed, and convicts the planter', async () => {
    const liar = testnet.workers[0] as Peer
    let given = 0
    liar.addEventListener('work:start', () => { given++ })
    const module = await readFile(MOUNTS_PROGRAM)
    const data = await requester.addTree({ type: 'directory', entries: { 'in.txt': file('abc\n') } })
    const mounts = [{ path: '/data', from: data }, { path: '/out', writable: true }]
    const record = (): ReturnType<Peer['workers']>[number]['record'] | undefined => requester.workers().find(w => w.peerId === liar.id)?.record
    // redundancy 2 over three workers: whenever the liar is one of the two, the trees disagree and a third run (and our own) decides.
    // It is convicted once heard; a planter that answers late (its first job compiling, a slow first fetch) is only outrun by the
    // honest pair, and its jobs go elsewhere for a while: rounds of 8 jobs, at most 4, give it the chances to be heard
    for (let round = 0; round < 4 && record()?.banned == null; round++) {
      const inputs = Array.from({ length: 8 }, (_, i) => `job ${round} ${i}`)
      for await (const each of requester.map(module, inputs, { redundancy: 2, concurrency: 2, mounts })) {
        assert.ok(each.ok, each.ok ? '' : `${each.error.name}: ${each.error.message}`)
        const out = each.result.mounts[0]
        assert.equal(out?.path, '/out')
        assert.deepEqual(Object.keys(out?.tree.entries ?? {}).sort(), ['logs', 'out.txt'])
        assert.deepEqual(out?.tree.entries['out.txt'], file('ABC\n'))
        assert.ok(each.result.receipts.every(r => r.receipt.worker !== liar.id && r.receipt.mounts?.[0]?.cid.toString() === out?.cid.toString()))
      }
    }
    assert.ok(given > 0, 'the liar got no job: the test proves nothing')
    assert.ok(record()?.banned != null, `the planter was not convicted: ${JSON.stringify(record())}`)
  })

  it('a resumed result gives back the same final tree, read from the store by the signed CID', async () => {
    const module = await readFile(MOUNTS_PROGRAM)
    const options = { module, input: 'resume me', redundancy: 2, resume: true, mounts: [{ path: '/data', from: { type: 'directory' as const, entries: { 'in.txt': file('xyz\n') } } }, { path: '/out', writable: true }] }
    const first = await requester.run(options)
    const again = await requester.run(options)
    assert.equal(again.resumed, true)
    assert.equal(again.mounts[0]?.cid.toString(), first.mounts[0]?.cid.toString())
    assert.deepEqual(again.mounts[0]?.tree.entries['out.txt'], file('XYZ\n'))
  })

  it('treeCid computes in memory the CID a peer\'s store gives a tree, files of many chunks included', async () => {
    const big = new Uint8Array(1024 * 1024 + 7).map((_, i) => i % 251)
    const tree: TreeDirectory = { type: 'directory', entries: { big: { type: 'file', content: big }, small: file('s'), sub: { type: 'directory', entries: {} } } }
    assert.equal((await treeCid(tree)).toString(), (await requester.addTree(tree)).toString())
  })

  it('refuses a mount that starts from a string that is not a CID', async () => {
    await assert.rejects(requester.run({ module: await readFile(MOUNTS_PROGRAM), mounts: [{ path: '/data', from: 'not-a-cid' }] }), { name: 'InvalidMountError' })
  })
})
