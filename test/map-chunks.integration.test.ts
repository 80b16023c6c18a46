import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, describe, it, type TestContext } from 'node:test'
import { createPeer } from '../node/create-peer.ts'
import { JobClient } from '../protocol/net/job-client.ts'
import { verifyReceipt } from '../protocol/wire/receipt.ts'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'
import { assertOnePath, recordEvents } from './helpers/job-events.ts'
import { ProcessNetwork, type TestWorker } from './helpers/processes.ts'
import type { Peer } from '../protocol/peer.ts'
import type { MapResult } from '../protocol/job/run-many.ts'

/** Every chunk this process's requesters send, counted at the client: the chunk path must really be taken. */
const chunks: number[] = []
const submitChunk = JobClient.prototype.submitChunk
JobClient.prototype.submitChunk = async function (this: JobClient, ...args: Parameters<JobClient['submitChunk']>) {
  chunks.push(args[1].length)
  return submitChunk.apply(this, args)
}

async function waitForWorkers (peer: Peer, count: number): Promise<void> {
  const until = Date.now() + 30_000
  while (peer.peers().filter(p => p.advert.slots.total > 0).length < count) {
    assert.ok(Date.now() < until, `only ${peer.peers().length} of ${count} workers advertised`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

async function collect (results: AsyncIterable<MapResult>): Promise<Map<number, MapResult>> {
  const byIndex = new Map<number, MapResult>()
  for await (const result of results) {
    byIndex.set(result.index, result)
  }
  return byIndex
}

/**
 * A `map` of tiny jobs over worker processes: the jobs go in chunks
 * (`submitChunk`), and each result is still its own job's, with a receipt
 * that verifies alone; a liar among the workers is caught in its chunks.
 */
describe('map in chunks across processes', () => {
  let network: ProcessNetwork
  let requester: Peer
  let echo: Uint8Array

  before(async () => {
    await buildWasm()
    echo = await readFile(wasmPath('echo'))
  })

  afterEach(async () => {
    await requester?.stop()
    await network?.stop()
  })

  after(() => {
    JobClient.prototype.submitChunk = submitChunk
  })

  /**
   * Two honest workers, then a map of two jobs (so the requester knows echo
   * is tiny), then a worker with `fault` joins, and a map of 1,500 jobs in
   * chunks of 4: the latecomer's first jobs come in chunks, not alone. Every job
   * must take one path of events.
   */
  async function mapWithLatecomer (fault: 'wrong-output' | 'stall'): Promise<{ inputs: string[], results: Map<number, MapResult>, faulty: TestWorker }> {
    network = await ProcessNetwork.start({ label: `chunks-${fault}` })
    await network.startWorkers(2, { slots: 2 })
    requester = await createPeer({ bootstrap: [network.bootstrapAddr], listen: ['/ip4/127.0.0.1/tcp/0'] })
    await waitForWorkers(requester, 2)
    for (const [, result] of await collect(requester.map(echo, ['warm', 'up'], { concurrency: 256 }))) {
      assert.ok(result.ok)
    }
    const faulty = await network.startWorker(fault, { slots: 2, env: { WASMESH_TEST_FAULT: fault } })
    await waitForWorkers(requester, 3)
    const inputs = Array.from({ length: 1500 }, (_, i) => `${fault} ${i}`)
    chunks.length = 0
    const events = recordEvents(requester)
    // chunks of 4 (an eighth of the jobs in flight): a newcomer is trusted with 2 jobs at once, and is sent a chunk only when it has room for half of one
    const results = await collect(requester.map(echo, inputs, { concurrency: 32, signal: AbortSignal.timeout(120_000) }))
    assertOnePath(events, inputs.length)
    return { inputs, results, faulty }
  }

  it('2,000 tiny jobs over two workers: chunks carry them, every output is its input\'s, every receipt verifies alone and names its job, every job has one path of events', async (t: TestContext) => {
    network = await ProcessNetwork.start({ label: 'chunks' })
    await network.startWorkers(2, { slots: 2 })
    requester = await createPeer({ bootstrap: [network.bootstrapAddr], listen: ['/ip4/127.0.0.1/tcp/0'] })
    await waitForWorkers(requester, 2)
    const inputs = Array.from({ length: 2000 }, (_, i) => `item ${i}`)
    chunks.length = 0
    const events = recordEvents(requester)
    const results = await collect(requester.map(echo, inputs, { concurrency: 256 }))
    assertOnePath(events, inputs.length)
    assert.equal(results.size, inputs.length)
    const jobs = new Set<string>()
    for (const [index, result] of results) {
      assert.ok(result.ok, result.ok ? '' : `${result.error.name}: ${result.error.message}`)
      assert.equal(result.result.text(), inputs[index]?.toUpperCase())
      assert.equal(result.result.receipt.job.toString(), result.result.job.toString())
      for (const verified of result.result.receipts) {
        // alone: only the receipt bytes and the job it must name
        await verifyReceipt(verified.signed, { job: result.result.job })
      }
      jobs.add(result.result.job.toString())
    }
    assert.equal(jobs.size, inputs.length, 'two inputs share a job CID')
    const chunked = chunks.reduce((sum, size) => sum + size, 0)
    assert.ok(chunked >= inputs.length / 2, `only ${chunked} of ${inputs.length} jobs went in chunks (${chunks.length} chunks)`)
    t.diagnostic(`${chunks.length} chunks carried ${chunked} executions (checks included) for ${inputs.length} jobs`)
  })

  it('1,000 separate run calls, 64 in flight: they travel in chunks too, each result its own job\'s, while a lone run goes alone', async (t: TestContext) => {
    network = await ProcessNetwork.start({ label: 'chunks-runs' })
    await network.startWorkers(2, { slots: 2 })
    requester = await createPeer({ bootstrap: [network.bootstrapAddr], listen: ['/ip4/127.0.0.1/tcp/0'] })
    await waitForWorkers(requester, 2)
    const peer = requester
    chunks.length = 0
    assert.equal((await peer.run({ module: echo, input: 'warm up' })).text(), 'WARM UP')
    assert.equal((await peer.run({ module: echo, input: 'alone' })).text(), 'ALONE')
    assert.equal(chunks.length, 0, 'a lone run went in a chunk')
    const inputs = Array.from({ length: 1000 }, (_, i) => `run ${i}`)
    const events = recordEvents(peer)
    let next = 0
    const outputs = new Map<number, string>()
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next < inputs.length) {
        const index = next++
        const result = await peer.run({ module: echo, input: inputs[index] as string })
        assert.equal(result.receipt.job.toString(), result.job.toString())
        for (const verified of result.receipts) {
          await verifyReceipt(verified.signed, { job: result.job })
        }
        outputs.set(index, result.text())
      }
    }))
    assertOnePath(events, inputs.length)
    for (const [index, input] of inputs.entries()) {
      assert.equal(outputs.get(index), input.toUpperCase())
    }
    const chunked = chunks.reduce((sum, size) => sum + size, 0)
    assert.ok(chunked >= inputs.length / 2, `only ${chunked} of ${inputs.length} runs went in chunks (${chunks.length} chunks)`)
    t.diagnostic(`${chunks.length} chunks carried ${chunked} executions (checks included) for ${inputs.length} runs`)
  })

  it('a batch goes in chunks and survives a restart: results are stored as chunks are accepted, and resume runs only what is left, in chunks', async (t: TestContext) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'wasmesh-chunk-batch-'))
    t.after(async () => { await rm(dataDir, { recursive: true, force: true }) })
    network = await ProcessNetwork.start({ label: 'chunks-batch' })
    await network.startWorkers(2, { slots: 2 })
    const inputs = Array.from({ length: 1000 }, (_, i) => `batch ${i}`)
    const started = async (): Promise<Peer> => {
      requester = await createPeer({ bootstrap: [network.bootstrapAddr], listen: ['/ip4/127.0.0.1/tcp/0'], dataDir })
      await waitForWorkers(requester, 2)
      return requester
    }
    chunks.length = 0
    const before = new Set<string>()
    for await (const result of (await started()).batch('chunked', echo, inputs, { concurrency: 64 })) {
      assert.ok(result.ok, result.ok ? '' : `${result.error.name}: ${result.error.message}`)
      before.add(result.result.job.toString())
      if (before.size === 500) {
        break // the requester goes away mid-batch
      }
    }
    assert.ok(chunks.length > 0, 'the batch sent no chunk: the test proves nothing about chunks')
    const chunksBefore = chunks.length
    await requester.stop()

    const [stored] = await (await started()).listBatches()
    assert.ok(stored != null && stored.done >= 500 && stored.done < inputs.length, `done before the restart: ${stored?.done}`)
    chunks.length = 0
    const results = await collect(requester.resume('chunked', { concurrency: 64 }))
    assert.equal(results.size, inputs.length)
    let resumed = 0
    for (const [index, result] of results) {
      assert.ok(result.ok, result.ok ? '' : `${result.error.name}: ${result.error.message}`)
      assert.equal(result.result.text(), inputs[index]?.toUpperCase())
      for (const verified of result.result.receipts) {
        await verifyReceipt(verified.signed, { job: result.result.job })
      }
      resumed += result.result.resumed ? 1 : 0
      if (before.has(result.result.job.toString())) {
        assert.equal(result.result.resumed, true, `job ${index} was accepted before the restart and ran again`)
      }
    }
    assert.equal(resumed, stored.done, 'every job stored before the restart, and only those, came from the store')
    assert.ok(chunks.length > 0, 'the resumed batch sent no chunk')
    assert.equal((await requester.listBatches())[0]?.done, inputs.length)
    t.diagnostic(`${chunksBefore} chunks before the restart; ${resumed} results from the store and ${chunks.length} chunks after it`)
  })

  it('a liar among three workers at redundancy 1: its chunks are checked, no wrong output is accepted, and it is banned', async (t: TestContext) => {
    const { inputs, results, faulty: liar } = await mapWithLatecomer('wrong-output')
    const ran = liar.process.lines.filter(line => line.startsWith('job started ')).length
    assert.ok(ran > 0, 'the liar ran no job: the test proves nothing')
    for (const [index, result] of results) {
      assert.ok(result.ok, result.ok ? '' : `${result.error.name}: ${result.error.message}`)
      assert.equal(result.result.text(), inputs[index]?.toUpperCase(), `job ${index}`)
      assert.ok(result.result.receipts.every(r => r.receipt.worker !== liar.peerId), 'a receipt of the liar was accepted')
    }
    assert.ok(chunks.length > 0, 'no chunk was sent: the test proves nothing about chunks')
    const record = requester.workers().find(w => w.peerId === liar.peerId)?.record
    assert.ok(record?.banned != null, `the liar was not banned: ${JSON.stringify(record)}`)
    assert.ok((await requester.evidence(liar.peerId)).length > 0, 'no evidence kept against the liar')
    for (const honest of requester.workers().filter(w => w.peerId !== liar.peerId)) {
      assert.equal(honest.record.banned, undefined, 'an honest worker was banned')
    }
    t.diagnostic(`${chunks.length} chunks, ${chunks.reduce((sum, size) => sum + size, 0)} executions in chunks for ${inputs.length} jobs; the liar started ${ran}`)
  })

  it('a worker that takes chunks and falls silent: their jobs finish on the other workers, each with one path of events', async (t: TestContext) => {
    const { inputs, results, faulty: staller } = await mapWithLatecomer('stall')
    for (const [index, result] of results) {
      assert.ok(result.ok, result.ok ? '' : `${result.error.name}: ${result.error.message}`)
      assert.equal(result.result.text(), inputs[index]?.toUpperCase())
      assert.notEqual(result.result.worker, staller.peerId)
    }
    const taken = staller.process.lines.filter(line => line.startsWith('job started ')).length
    assert.ok(taken > 0, 'the staller took no job: the test proves nothing')
    t.diagnostic(`the staller took ${taken} jobs; the map of ${inputs.length} went in ${chunks.length} chunks`)
  })
})
