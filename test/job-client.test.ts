import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { lpStream, streamPair } from '@libp2p/utils'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { DEFAULT_LIMITS, MAX_MESSAGE_BYTES } from '../protocol/constants.ts'
import { CancelledError, InvalidReceiptError, WorkerBusyError } from '../protocol/errors.ts'
import { JobClient } from '../protocol/net/job-client.ts'
import { encodeJob, type EncodedJob } from '../protocol/wire/job.ts'
import { encodeCbor } from '../protocol/wire/cbor.ts'
import { decodeRequest, encodeMessage, type JobRequest } from '../protocol/wire/messages.ts'
import type { Libp2pEvents, Stream, TypedEventTarget } from '@libp2p/interface'

/**
 * The requester's side of the job protocol against a scripted worker on an
 * in-memory stream pair: which frames the client writes for jobs placed in
 * one turn or apart, and how answers find their jobs. The worker's side of
 * `submitMany` runs for real in test/job-protocol.test.ts.
 */

const hex = (bytes: Uint8Array | undefined): string => Buffer.from(bytes ?? []).toString('hex')

async function jobFor (input: string): Promise<EncodedJob> {
  const module = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode('module')))
  return encodeJob({ v: 1, module, abi: 'wasi', args: [], env: {}, input: new TextEncoder().encode(input), limits: { ...DEFAULT_LIMITS }, redundancy: 1 })
}

/** A JobClient whose one worker is the far end of a stream pair, read frame by frame. */
async function clientWithWorker (): Promise<{ client: JobClient, worker: string, next: () => Promise<JobRequest>, answer: (message: Parameters<typeof encodeMessage>[0]) => Promise<void>, close: () => void }> {
  const [outbound, inbound] = await streamPair()
  const worker = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  const client = new JobClient({
    libp2p: { dialProtocol: async () => outbound, peerStore: { merge: async () => { throw new Error('not used') } } } as unknown as ConstructorParameters<typeof JobClient>[0]['libp2p'],
    events: new EventTarget() as unknown as TypedEventTarget<Libp2pEvents>,
    capacity: { get: () => undefined }
  })
  const lp = lpStream<Stream>(inbound, { maxDataLength: MAX_MESSAGE_BYTES })
  return {
    client,
    worker,
    next: async () => decodeRequest((await lp.read()).subarray()),
    answer: async message => { await lp.write(encodeMessage(message)) },
    close: () => { client.drop(worker, new Error('test done')) }
  }
}

describe('job client: jobs in batches on the wire', () => {
  it('sends the jobs placed on one worker in one turn as one submitMany, in order, and a lone job as submit', async () => {
    const { client, worker, next, answer, close } = await clientWithWorker()
    const jobs = await Promise.all(['a', 'b', 'c'].map(jobFor))
    const signal = new AbortController().signal
    const results = jobs.map(async job => client.submit(worker, job, { signal }).then(() => 'receipt', (err: Error) => err.name))
    const batch = await next()
    assert.equal(batch.type, 'submitMany')
    assert.deepEqual(batch.type === 'submitMany' && batch.jobs.map(entry => hex(entry.job)), jobs.map(job => hex(job.bytes)))
    const ids = batch.type === 'submitMany' ? batch.jobs.map(entry => entry.id) : []
    assert.equal(new Set(ids).size, 3, 'each job keeps its own id')
    // each answer reaches its own job, whatever the order
    await answer({ type: 'busy', id: ids[2] as number })
    await answer({ type: 'error', id: ids[0] as number, error: { name: 'ContentFetchError', message: 'gone' } })
    await answer({ type: 'busy', id: ids[1] as number })
    assert.deepEqual(await Promise.all(results), ['ContentFetchError', WorkerBusyError.NAME, WorkerBusyError.NAME])
    // a job placed alone, later, goes as a plain submit: a single run pays nothing for batching
    const lone = await jobFor('d')
    const pending = client.submit(worker, lone, { signal }).catch((err: Error) => err)
    const single = await next()
    assert.equal(single.type, 'submit')
    assert.equal(single.type === 'submit' && hex(single.job), hex(lone.bytes))
    close()
    assert.ok(await pending instanceof Error)
  })

  it('drops a job cancelled before its batch went out, and tells the worker about one cancelled after', async () => {
    const { client, worker, next, answer, close } = await clientWithWorker()
    const jobs = await Promise.all(['a', 'b', 'c'].map(jobFor))
    const controllers = jobs.map(() => new AbortController())
    const results = jobs.map(async (job, i) => client.submit(worker, job, { signal: (controllers[i] as AbortController).signal }).catch((err: Error) => err))
    // cancelled in the same turn it was placed: it never goes out
    controllers[1]?.abort(new CancelledError('changed my mind'))
    const batch = await next()
    assert.equal(batch.type, 'submitMany')
    assert.deepEqual(batch.type === 'submitMany' && batch.jobs.map(entry => hex(entry.job)), [hex(jobs[0]?.bytes), hex(jobs[2]?.bytes)])
    assert.equal((await results[1] as Error).name, CancelledError.NAME)
    // cancelled after it went out: the worker is told, after the batch that carried it
    controllers[0]?.abort(new CancelledError('later'))
    const cancel = await next()
    assert.deepEqual(cancel, { type: 'cancel', id: batch.type === 'submitMany' ? batch.jobs[0]?.id : -1 })
    assert.equal((await results[0] as Error).name, CancelledError.NAME)
    await answer({ type: 'credit', id: 0, window: 7 })
    await answer({ type: 'busy', id: batch.type === 'submitMany' ? batch.jobs[1]?.id as number : -1 })
    assert.equal((await results[2] as Error).name, WorkerBusyError.NAME)
    assert.equal(client.granted(worker), 7)
    close()
  })

  it('keeps each submitMany within the message size limit', async () => {
    const { client, worker, next, close } = await clientWithWorker()
    // 400 KiB of input each (inline inputs go up to 1 MiB): two fit in one message, a third does not
    const big = await Promise.all([0, 1, 2].map(async i => jobFor(String(i).repeat(400 * 1024))))
    const signal = new AbortController().signal
    const results = big.map(async job => client.submit(worker, job, { signal }).catch((err: Error) => err))
    const first = await next()
    const second = await next()
    assert.deepEqual([first.type, first.type === 'submitMany' ? first.jobs.length : 1], ['submitMany', 2])
    assert.equal(second.type, 'submit')
    close()
    await Promise.all(results)
  })
})

describe('job client: chunks', () => {
  it('pairs a chunk answer with its jobs in order, and refuses an answer of the wrong length or kind', async () => {
    const { client, worker, next, answer, close } = await clientWithWorker()
    const jobs = await Promise.all(['a', 'b'].map(jobFor))
    const signal = new AbortController().signal
    const first = client.submitChunk(worker, jobs, { signal })
    const sent = await next()
    assert.equal(sent.type, 'submitChunk')
    assert.deepEqual(sent.type === 'submitChunk' && sent.jobs.map(hex), jobs.map(job => hex(job.bytes)))
    // a result per job, in order: an error where the worker had no receipt
    const signed = encodeCbor({ payload: new Uint8Array([1]), signature: new Uint8Array(64) })
    await answer({ type: 'chunk', id: sent.id, results: [{ receipt: signed }, { error: { name: 'ContentFetchError', message: 'gone' } }] })
    const answers = await first
    assert.ok('signed' in (answers[0] as object))
    assert.equal((answers[1] as { error: Error }).error.name, 'ContentFetchError')
    // one result too few
    const second = client.submitChunk(worker, jobs, { signal }).catch((err: Error) => err)
    const short = await next()
    await answer({ type: 'chunk', id: short.id, results: [{ receipt: signed }] })
    assert.equal((await second as Error).name, InvalidReceiptError.NAME)
    // a single receipt where a chunk was owed
    const third = client.submitChunk(worker, jobs, { signal }).catch((err: Error) => err)
    const wrong = await next()
    await answer({ type: 'receipt', id: wrong.id, receipt: signed })
    assert.match((await third as Error).message, /a receipt where it owed a chunk/)
    close()
  })

  it('tells the worker when a chunk is cancelled, and rejects it with the reason', async () => {
    const { client, worker, next, close } = await clientWithWorker()
    const controller = new AbortController()
    const pending = client.submitChunk(worker, await Promise.all(['a', 'b'].map(jobFor)), { signal: controller.signal }).catch((err: Error) => err)
    const sent = await next()
    controller.abort(new CancelledError('no longer wanted'))
    assert.equal((await pending as Error).name, CancelledError.NAME)
    assert.deepEqual(await next(), { type: 'cancel', id: sent.id })
    close()
  })
})
