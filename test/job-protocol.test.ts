import assert from 'node:assert/strict'
import { readFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { createPeer } from '../node/create-peer.ts'
import { nodeLibp2pOptions } from '../node/libp2p-options.ts'
import { encodeCbor } from '../protocol/wire/cbor.ts'
import { DEADLINE_GRACE_MS, DEFAULT_LIMITS, JOB_PROTOCOL, MAX_MESSAGE_BYTES } from '../protocol/constants.ts'
import { encodeJob, type EncodedJob } from '../protocol/wire/job.ts'
import { decodeResponse, encodeMessage, type JobResponse } from '../protocol/wire/messages.ts'
import { decodeSignedReceipt, verifyReceipt, type VerifiedReceipt } from '../protocol/wire/receipt.ts'
import type { ResourceLimits } from '../protocol/runtime/executor.ts'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'
import { createTestnet, type Testnet } from './helpers/testnet.ts'
import type { Peer } from '../protocol/peer.ts'
import type { Libp2p, Stream } from '@libp2p/interface'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** How long any single answer may take before we call it a hang: far beyond what any job here needs. */
const HANG_MS = 30_000

// Keep the peers under test away from any local network `npm start` left running,
// and from $WASMESH_BOOTSTRAP: these tests build their own networks.
const home = await mkdtemp(join(tmpdir(), 'wasmesh-job-protocol-'))
process.env.WASMESH_HOME = home
delete process.env.WASMESH_BOOTSTRAP

let echoWasm: Uint8Array
let spinWasm: Uint8Array

before(async () => {
  await buildWasm()
  echoWasm = new Uint8Array(await readFile(wasmPath('echo')))
  spinWasm = new Uint8Array(await readFile(wasmPath('spin')))
})

after(async () => {
  await rm(home, { recursive: true, force: true })
})

/**
 * A raw job-protocol stream: writes frames as given, and collects every
 * response the worker sends, in order.
 */
class RawJobStream {
  readonly stream: Stream
  readonly lp: LengthPrefixedStream<Stream>
  readonly responses: JobResponse[] = []
  /** Set when the stream ends or breaks. */
  ended?: Error
  private notify?: () => void

  constructor (stream: Stream) {
    this.stream = stream
    // no limit on our side: some tests send frames the worker must refuse
    this.lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES * 2 })
    void this.readLoop()
  }

  async send (message: unknown): Promise<void> {
    await this.lp.write(encodeCbor(message))
  }

  async sendRaw (bytes: Uint8Array): Promise<void> {
    await this.lp.write(bytes)
  }

  /** The first response (in arrival order) that matches; fails if the stream ends first or nothing comes within HANG_MS. */
  async next (match: (response: JobResponse) => boolean, what: string, withinMs = HANG_MS): Promise<JobResponse> {
    const deadline = Date.now() + withinMs
    while (true) {
      const found = this.responses.find(match)
      if (found != null) {
        return found
      }
      if (this.ended != null) {
        assert.fail(`the stream ended before ${what}: ${this.ended.message}`)
      }
      if (Date.now() >= deadline) {
        assert.fail(`no ${what} within ${withinMs} ms: the worker hangs`)
      }
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()))
        this.notify = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
  }

  /** Resolves once the worker has closed or reset the stream; fails if it stays open for HANG_MS. */
  async endOfStream (): Promise<Error> {
    const deadline = Date.now() + HANG_MS
    while (this.ended == null) {
      if (Date.now() >= deadline) {
        assert.fail(`the worker kept the stream open for ${HANG_MS} ms`)
      }
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()))
        this.notify = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    return this.ended
  }

  async close (): Promise<void> {
    await this.stream.close().catch(() => { this.stream.abort(new Error('test done')) })
  }

  private async readLoop (): Promise<void> {
    try {
      while (true) {
        const frame = await this.lp.read()
        this.responses.push(decodeResponse(frame.subarray()))
        this.notify?.()
      }
    } catch (err) {
      this.ended = err as Error
      this.notify?.()
    }
  }
}

function byId (id: number, type?: JobResponse['type']): (response: JobResponse) => boolean {
  return response => response.id === id && (type == null || response.type === type)
}

async function jobFor (module: CID, input: string, limits: Partial<ResourceLimits> = {}): Promise<EncodedJob> {
  return encodeJob({
    v: 1,
    module,
    abi: 'wasi',
    args: [],
    env: {},
    input: encoder.encode(input),
    limits: { ...DEFAULT_LIMITS, ...limits },
    redundancy: 1,
    nonce: crypto.getRandomValues(new Uint8Array(8))
  })
}

/** Waits for the final answer to a submit and checks it is a receipt that verifies for this job and worker. */
async function expectReceipt (raw: RawJobStream, id: number, job: EncodedJob, worker: string): Promise<VerifiedReceipt> {
  const answer = await raw.next(response => response.id === id && (response.type === 'receipt' || response.type === 'error' || response.type === 'busy'), `an answer to request ${id}`)
  assert.equal(answer.type, 'receipt', `request ${id} was answered ${JSON.stringify(answer)}`)
  const verified = await verifyReceipt(decodeSignedReceipt((answer as { receipt: Uint8Array }).receipt), { job: job.cid, worker })
  assert.equal(verified.receipt.worker, worker)
  return verified
}

describe('job protocol over raw streams', () => {
  let worker: Peer
  let client: Libp2p
  let echoCid: CID
  let spinCid: CID
  const open: RawJobStream[] = []

  async function openStream (target = worker): Promise<RawJobStream> {
    const address = target.addresses().find(addr => addr.includes('/tcp/') && !addr.includes('/ws'))
    assert.ok(address != null, `the worker listens on TCP: ${target.addresses().join(', ')}`)
    const stream = await client.dialProtocol(multiaddr(address), JOB_PROTOCOL)
    const raw = new RawJobStream(stream)
    open.push(raw)
    return raw
  }

  before(async () => {
    worker = await createPeer({ bootstrap: [], contribute: { threads: 1 }, listen: ['/ip4/127.0.0.1/tcp/0'] })
    client = await createLibp2p(nodeLibp2pOptions({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] }))
    echoCid = await worker.add(echoWasm)
    spinCid = await worker.add(spinWasm)
  })

  after(async () => {
    for (const raw of open) {
      await raw.close()
    }
    await client?.stop()
    await worker?.stop()
  })

  it('runs a valid job and answers with a receipt that verifies', async () => {
    const raw = await openStream()
    const job = await jobFor(echoCid, 'hello wasmesh')
    await raw.send({ type: 'submit', id: 1, job: job.bytes })
    const { receipt } = await expectReceipt(raw, 1, job, worker.id)
    assert.equal(receipt.exitCode, 0)
    assert.equal(decoder.decode(receipt.output as Uint8Array), 'HELLO WASMESH')
    await raw.close()
  })

  it('answers a garbage frame with a MalformedMessageError and keeps serving the stream', async () => {
    const raw = await openStream()
    await raw.sendRaw(new Uint8Array([0xff, 0x13, 0x37, 0x00, 0xde, 0xad]))
    const garbage = await raw.next(byId(0, 'error'), 'an error about the garbage frame')
    assert.equal(garbage.type === 'error' && garbage.error.name, 'MalformedMessageError')
    // a well-formed cbor frame that is not a request gets the same answer
    await raw.send({ type: 'run', id: 9 })
    await raw.next(response => response.type === 'error' && response !== garbage, 'an error about the unknown request type')
    assert.ok(raw.responses.filter(r => r.type === 'error').every(r => r.type === 'error' && r.error.name === 'MalformedMessageError'))
    assert.equal(raw.ended, undefined)

    const job = await jobFor(echoCid, 'still here')
    await raw.send({ type: 'submit', id: 2, job: job.bytes })
    const { receipt } = await expectReceipt(raw, 2, job, worker.id)
    assert.equal(decoder.decode(receipt.output as Uint8Array), 'STILL HERE')
    await raw.close()
  })

  it('answers a submit whose job bytes are malformed with an error for that id', async () => {
    const raw = await openStream()
    const valid = await jobFor(echoCid, 'x')
    await raw.send({ type: 'submit', id: 3, job: new Uint8Array([0xa1, 0x61]) })
    await raw.send({ type: 'submit', id: 4, job: encodeCbor({ ...valid.spec, abi: 'emscripten' }) })
    await raw.send({ type: 'submit', id: 5, job: encodeCbor({ ...valid.spec, limits: { ...valid.spec.limits, timeoutMs: -1 } }) })
    for (const id of [3, 4, 5]) {
      const answer = await raw.next(byId(id), `an answer to malformed submit ${id}`)
      assert.equal(answer.type, 'error')
      assert.equal(answer.type === 'error' && answer.error.name, 'MalformedMessageError')
    }
    assert.ok(!raw.responses.some(r => r.type === 'accepted'), 'a malformed job was accepted')
    // and the slot was not taken by them
    const job = await jobFor(echoCid, 'after')
    await raw.send({ type: 'submit', id: 6, job: job.bytes })
    await expectReceipt(raw, 6, job, worker.id)
    await raw.close()
  })

  it('closes a stream that sends an oversize frame, and keeps serving new streams', async () => {
    const raw = await openStream()
    // the worker may reset the stream before it has read all of it, failing our write: that is fine
    await raw.sendRaw(new Uint8Array(MAX_MESSAGE_BYTES + 1)).catch(() => {})
    await raw.endOfStream()
    assert.ok(!raw.responses.some(r => r.type === 'accepted' || r.type === 'receipt'))
    assert.equal(worker.status, 'started')

    const fresh = await openStream()
    const job = await jobFor(echoCid, 'new stream')
    await fresh.send({ type: 'submit', id: 1, job: job.bytes })
    const { receipt } = await expectReceipt(fresh, 1, job, worker.id)
    assert.equal(decoder.decode(receipt.output as Uint8Array), 'NEW STREAM')
    await fresh.close()
  })

  it('grants a credit window, queues jobs within it, and answers busy beyond it', async () => {
    const raw = await openStream()
    const credit = await raw.next(response => response.type === 'credit', 'the credit window the worker grants')
    const window = credit.type === 'credit' ? credit.window : 0
    assert.ok(window >= 1, `window ${window}`)
    // more long jobs than the window: the first runs, the rest of the window waits in the queue, the one beyond is refused
    const jobs = await Promise.all(Array.from({ length: window + 1 }, async () => jobFor(spinCid, '60000', { timeoutMs: 120_000 })))
    for (const [i, job] of jobs.entries()) {
      await raw.send({ type: 'submit', id: i + 1, job: job.bytes })
    }
    const beyond = await raw.next(response => response.id === window + 1 && response.type !== 'accepted', 'an answer to the job beyond the window')
    assert.equal(beyond.type, 'busy')
    // every job within the window was taken, not refused
    for (let id = 1; id <= window; id++) {
      await raw.next(byId(id, 'accepted'), `acceptance of job ${id} within the window`)
      assert.ok(!raw.responses.some(byId(id, 'busy')), `job ${id} within the window was answered busy`)
    }
    // cancelling frees the queue and the slot: each cancelled job gets its one answer
    for (let id = window; id >= 1; id--) {
      await raw.send({ type: 'cancel', id })
    }
    for (let id = 1; id <= window; id++) {
      const answer = await raw.next(response => response.id === id && response.type === 'error', `the end of cancelled job ${id}`)
      assert.equal(answer.type === 'error' && answer.error.name, 'CancelledError')
    }
    const after = await jobFor(echoCid, 'free')
    await raw.send({ type: 'submit', id: window + 2, job: after.bytes })
    await expectReceipt(raw, window + 2, after, worker.id)
    await raw.close()
  })

  it('takes a submitMany job by job: each answered on its own id, the credit counted exactly, a batched job cancellable', async () => {
    const raw = await openStream()
    const credit = await raw.next(response => response.type === 'credit', 'the credit window the worker grants')
    const window = credit.type === 'credit' ? credit.window : 0
    // one job that does not decode, then one more long job than the window allows
    const jobs = await Promise.all(Array.from({ length: window + 1 }, async () => jobFor(spinCid, '60000', { timeoutMs: 120_000 })))
    await raw.send({ type: 'submitMany', id: 0, jobs: [{ id: 1, job: new Uint8Array([0xa0]) }, ...jobs.map((job, i) => ({ id: i + 2, job: job.bytes }))] })
    const malformed = await raw.next(response => response.id === 1, 'an answer to the job that does not decode')
    assert.equal(malformed.type === 'error' && malformed.error.name, 'MalformedMessageError')
    // the refused job took no credit: the whole window went to the long jobs, and the one beyond it is busy
    const beyond = await raw.next(response => response.id === window + 2 && response.type !== 'accepted', 'an answer to the job beyond the window')
    assert.equal(beyond.type, 'busy')
    for (let id = 2; id <= window + 1; id++) {
      await raw.next(byId(id, 'accepted'), `acceptance of batched job ${id}`)
    }
    // a batched job is cancelled like any other, running or queued, with exactly one answer each
    for (let id = window + 1; id >= 2; id--) {
      await raw.send({ type: 'cancel', id })
    }
    for (let id = 2; id <= window + 1; id++) {
      const answer = await raw.next(response => response.id === id && response.type === 'error', `the end of cancelled job ${id}`)
      assert.equal(answer.type === 'error' && answer.error.name, 'CancelledError')
      assert.equal(raw.responses.filter(response => response.id === id && response.type !== 'accepted').length, 1, `job ${id} got one answer`)
    }
    // with the room free again, a batch of quick jobs: those within the window now granted come back as receipts, the rest busy
    const latest = raw.responses.filter(response => response.type === 'credit').at(-1)
    const room = Math.min(3, latest?.type === 'credit' ? latest.window : 0)
    const quick = await Promise.all(['a', 'b', 'c'].map(async input => jobFor(echoCid, input)))
    await raw.send({ type: 'submitMany', id: 0, jobs: quick.map((job, i) => ({ id: 100 + i, job: job.bytes })) })
    for (const [i, job] of quick.entries()) {
      if (i < room) {
        const verified = await expectReceipt(raw, 100 + i, job, worker.id)
        assert.equal(decoder.decode(verified.receipt.output as Uint8Array), ['A', 'B', 'C'][i])
      } else {
        assert.equal((await raw.next(response => response.id === 100 + i && response.type !== 'accepted', `an answer to quick job ${i}`)).type, 'busy')
      }
    }
    await raw.close()
  })

  it('runs a submitChunk as one unit: one answer, a receipt per job in order under one signature, each verifying alone', async (t) => {
    // a fresh worker with four slots grants four jobs before it has measured any: room for the chunk whatever ran before
    const four = await createPeer({ bootstrap: [], contribute: { threads: 4 }, listen: ['/ip4/127.0.0.1/tcp/0'] })
    t.after(async () => { await four.stop() })
    await four.add(echoWasm)
    const raw = await openStream(four)
    const inputs = ['one', 'two', 'three', 'four']
    const jobs = await Promise.all(inputs.map(async input => jobFor(echoCid, input)))
    await raw.send({ type: 'submitChunk', id: 1, jobs: jobs.map(job => job.bytes) })
    const answer = await raw.next(response => response.id === 1 && response.type !== 'accepted', 'the answer to the chunk')
    assert.equal(answer.type, 'chunk', JSON.stringify(answer))
    const results = answer.type === 'chunk' ? answer.results : []
    assert.equal(results.length, jobs.length)
    const signatures = new Set<string>()
    for (const [i, result] of results.entries()) {
      assert.ok('receipt' in result, JSON.stringify(result))
      const signed = decodeSignedReceipt(result.receipt)
      // alone: a receipt from the middle of the chunk, checked against its own job only
      const verified = await verifyReceipt(signed, { job: (jobs[i] as EncodedJob).cid, worker: four.id })
      assert.equal(decoder.decode(verified.receipt.output as Uint8Array), inputs[i]?.toUpperCase())
      assert.equal(signed.batch?.count, jobs.length)
      signatures.add(Buffer.from(signed.signature).toString('hex'))
    }
    assert.equal(signatures.size, 1, 'the chunk was signed more than once')
    assert.equal(raw.responses.filter(response => response.id === 1 && response.type !== 'accepted').length, 1)
    await raw.close()
  })

  it('refuses a chunk whole: beyond the credit it is busy, with a job that does not decode it is an error, and no job of it runs', async () => {
    const raw = await openStream()
    const credit = await raw.next(response => response.type === 'credit', 'the credit window the worker grants')
    const window = credit.type === 'credit' ? credit.window : 0
    // the credit filled with long jobs: a chunk of one more is beyond it
    const long = await Promise.all(Array.from({ length: window }, async () => jobFor(spinCid, '60000', { timeoutMs: 120_000 })))
    for (const [i, job] of long.entries()) {
      await raw.send({ type: 'submit', id: i + 1, job: job.bytes })
    }
    const quick = await jobFor(echoCid, 'beyond')
    const good = await jobFor(echoCid, 'fine')
    const started: string[] = []
    const onStart = (event: CustomEvent<{ job: string }>): void => { started.push(event.detail.job) }
    worker.addEventListener('work:start', onStart)
    await raw.send({ type: 'submitChunk', id: 500, jobs: [quick.bytes] })
    assert.equal((await raw.next(response => response.id === 500 && response.type !== 'accepted', 'the answer to the chunk beyond the credit')).type, 'busy')
    for (let id = window; id >= 1; id--) {
      await raw.send({ type: 'cancel', id })
    }
    for (let id = 1; id <= window; id++) {
      await raw.next(response => response.id === id && response.type === 'error', `the end of cancelled job ${id}`)
    }
    await raw.send({ type: 'submitChunk', id: 501, jobs: [good.bytes, new Uint8Array([0xa0])] })
    const refused = await raw.next(response => response.id === 501 && response.type !== 'accepted', 'the answer to the chunk with a bad job')
    assert.equal(refused.type === 'error' && refused.error.name, 'MalformedMessageError')
    worker.removeEventListener('work:start', onStart)
    assert.deepEqual(started.filter(job => job === quick.cid.toString() || job === good.cid.toString()), [], 'a job of a refused chunk ran')
    // a chunk of long jobs, cancelled while it runs: one answer, CancelledError
    const spins = await Promise.all([1, 2].map(async () => jobFor(spinCid, '60000', { timeoutMs: 120_000 })))
    await raw.send({ type: 'submitChunk', id: 502, jobs: spins.map(job => job.bytes) })
    await raw.next(byId(502, 'accepted'), 'acceptance of the long chunk')
    await raw.send({ type: 'cancel', id: 502 })
    const cancelled = await raw.next(response => response.id === 502 && response.type === 'error', 'the end of the cancelled chunk')
    assert.equal(cancelled.type === 'error' && cancelled.error.name, 'CancelledError')
    // the slot is free again
    await raw.send({ type: 'submit', id: 503, job: good.bytes })
    await expectReceipt(raw, 503, good, worker.id)
    assert.equal(raw.responses.filter(response => response.id === 502 && response.type !== 'accepted').length, 1)
    await raw.close()
  })

  it('a cancelled job frees its slot', async () => {
    const raw = await openStream()
    const long = await jobFor(spinCid, '60000', { timeoutMs: 120_000 })
    await raw.send({ type: 'submit', id: 1, job: long.bytes })
    await raw.next(byId(1, 'accepted'), 'acceptance of the long job')
    await raw.sendRaw(encodeMessage({ type: 'cancel', id: 1 }))
    const answer = await raw.next(response => response.id === 1 && response.type !== 'accepted', 'the end of the cancelled job')
    assert.equal(answer.type, 'error')
    const job = await jobFor(echoCid, 'after cancel')
    await raw.send({ type: 'submit', id: 2, job: job.bytes })
    await expectReceipt(raw, 2, job, worker.id)
    await raw.close()
  })

  it('answers a job whose module nobody has with ContentFetchError instead of hanging', async () => {
    const raw = await openStream()
    const missing = CID.createV1(0x55, await sha256.digest(crypto.getRandomValues(new Uint8Array(32))))
    const job = await jobFor(missing, 'x', { timeoutMs: 2000 })
    await raw.send({ type: 'submit', id: 1, job: job.bytes })
    try {
      // by then a requester gives up on the worker (Peer.runOn's deadline)
      const withinMs = job.spec.limits.timeoutMs + DEADLINE_GRACE_MS
      const answer = await raw.next(response => response.id === 1 && response.type !== 'accepted', 'an answer to the job with a missing module', withinMs)
      assert.equal(answer.type, 'error')
      assert.equal(answer.type === 'error' && answer.error.name, 'ContentFetchError')
    } finally {
      // free the slot whatever happened, so the hang does not outlive the test
      await raw.send({ type: 'cancel', id: 1 }).catch(() => {})
      await raw.close()
    }
  })
})

describe('two peers through a bootstrap node', () => {
  let testnet: Testnet
  let contributor: Peer
  let requester: Peer

  after(async () => { await testnet?.stop() })

  before(async () => {
    testnet = await createTestnet(1, { slots: 2 })
    contributor = testnet.workers[0] as Peer
    requester = await testnet.requester()
  })

  it('run() executes on the contributor and returns a verified result', async () => {
    const result = await requester.run({ module: echoWasm, input: 'hi' })
    assert.equal(result.text(), 'HI')
    assert.equal(result.worker, contributor.id)
    assert.equal(result.receipt.worker, contributor.id)
    assert.equal(result.receipt.job.toString(), result.job.toString())
    assert.equal(result.receipts.length, 1)
    // the receipt the requester kept verifies on its own
    await verifyReceipt(result.receipts[0]?.signed ?? assert.fail('no signed receipt'), { job: result.job, worker: contributor.id })
  })

  it('map() over 20 inputs yields 20 ok results with the right outputs', async () => {
    const inputs = Array.from({ length: 20 }, (_, i) => `input number ${i}`)
    const results = []
    for await (const result of requester.map(echoWasm, inputs)) {
      results.push(result)
    }
    assert.equal(results.length, 20)
    assert.deepEqual(results.map(r => r.index).sort((a, b) => a - b), inputs.map((_, i) => i))
    for (const result of results) {
      assert.ok(result.ok, `input ${result.index} failed: ${result.ok ? '' : `${result.error.name}: ${result.error.message}`}`)
      assert.equal(result.result.text(), inputs[result.index]?.toUpperCase())
      assert.equal(result.result.worker, contributor.id)
    }
  })
})

describe('a worker that stops mid-job', () => {
  let testnet: Testnet
  let workers: Peer[]
  let requester: Peer

  after(async () => { await testnet?.stop() })

  before(async () => {
    testnet = await createTestnet(2)
    workers = testnet.workers
    requester = await testnet.requester({ spotCheck: false })
  })

  it('tells the requester it went away, and the job completes on the other worker', async () => {
    // stop the first worker to start the job while the module runs (its fetch takes milliseconds, the
    // spin over a second): it answers before its connections close
    let stopping: Peer | undefined
    for (const worker of workers) {
      worker.addEventListener('work:start', () => {
        if (stopping == null) {
          stopping = worker
          setTimeout(() => { void worker.stopContributing() }, 300)
        }
      })
    }
    const result = await requester.run({ module: spinWasm, input: '1500' })
    assert.equal(result.text(), 'done\n')
    const stopped = workers.filter(worker => worker.contribution == null)
    assert.equal(stopped.length, 1, 'exactly one worker should have stopped mid-job')
    assert.notEqual(result.worker, stopped[0]?.id)
  })
})
