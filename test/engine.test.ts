import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { FsDatastore } from 'datastore-fs'
import { Key } from 'interface-datastore'
import { encodeCbor } from '../protocol/wire/cbor.ts'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'
import { assertOnePath, recordEvents } from './helpers/job-events.ts'
import { createTestnet, type Testnet } from './helpers/testnet.ts'
import type { PeerRecord } from '../protocol/job/reputation.ts'
import type { Peer } from '../protocol/peer.ts'

describe('the engine, in process', () => {
  let echo: Uint8Array
  let spin: Uint8Array
  let trap: Uint8Array

  before(async () => {
    await buildWasm()
    echo = await readFile(wasmPath('echo'))
    spin = await readFile(wasmPath('spin'))
    trap = await readFile(wasmPath('trap'))
  })

  describe('with one worker', () => {
    let testnet: Testnet
    let requester: Peer
    after(async () => { await testnet?.stop() })
    before(async () => {
      testnet = await createTestnet(1, { slots: 2 })
      requester = await testnet.requester({ workerWaitMs: 1500 })
    })

    it('redundancy 2 fails clearly, saying how many distinct workers it found, and never runs twice on one worker', async () => {
      const starts: string[] = []
      testnet.workers[0]?.addEventListener('work:start', event => { starts.push(event.detail.job) })
      await assert.rejects(requester.run({ module: echo, input: 'twice?', redundancy: 2 }), (err: Error) => {
        assert.equal(err.name, 'NotEnoughWorkersError')
        assert.match(err.message, /needs 2 distinct workers, and only 1 could take this job within \d+ ms \(1 gave a result\)/)
        return true
      })
      assert.equal(starts.length, 1, `the one worker ran the job ${starts.length} times`)
    })

    it('a job that outlasts its hedge time, with no other worker to hedge on, completes on the worker computing it', async () => {
      // a short run first: the module's hedge time becomes 4 × its round trip, under SILENCE_HEDGE_MS (1 s) then;
      // past it, finding no other worker for workerWaitMs (1.5 s) must not fail a job its worker is running
      await requester.run({ module: spin, input: '1' })
      const result = await requester.run({ module: spin, input: '3000', limits: { timeoutMs: 60_000 } })
      assert.equal(result.receipt.exitCode, 0)
      assert.equal(result.worker, testnet.workers[0]?.id)
    })
  })

  describe('with two workers', () => {
    let testnet: Testnet
    let requester: Peer
    let events: Map<string, string[]>
    after(async () => { await testnet?.stop() })
    before(async () => {
      testnet = await createTestnet(2, { slots: 2 })
      requester = await testnet.requester({ workerWaitMs: 1500 })
      events = recordEvents(requester)
    })

    it('redundancy 2 returns two receipts from two distinct workers', async () => {
      const result = await requester.run({ module: echo, input: 'two workers', redundancy: 2 })
      assert.equal(result.text(), 'TWO WORKERS')
      const signers = result.receipts.map(r => r.receipt.worker)
      assert.equal(new Set(signers).size, 2, `receipts signed by ${signers.join(', ')}`)
      assert.deepEqual(new Set(signers), new Set(testnet.workers.map(w => w.id)))
    })

    it('a lone run\'s check is drawn when it is placed and runs beside it, not after it', async () => {
      const fresh = await testnet.requester({ workerWaitMs: 1500 })
      try {
        const log: string[] = []
        for (const worker of testnet.workers) {
          worker.addEventListener('work:start', event => { log.push(`start ${event.detail.job}`) })
          worker.addEventListener('work:end', event => { log.push(`end ${event.detail.job}`) })
        }
        // both workers are new to this requester: every single result of theirs is checked
        const result = await fresh.run({ module: spin, input: '300' })
        const job = result.job.toString()
        assert.deepEqual(log.filter(line => line.endsWith(job)).map(line => line.split(' ')[0]), ['start', 'start', 'end', 'end'], 'the check started only after the first run ended')
      } finally {
        await fresh.stop()
      }
    })

    it('checks a new worker\'s single results on the other worker', async () => {
      const ran = new Map<string, Set<string>>()
      for (const worker of testnet.workers) {
        worker.addEventListener('work:start', event => { ran.set(event.detail.job, new Set([...(ran.get(event.detail.job) ?? []), worker.id])) })
      }
      const result = await requester.run({ module: echo, input: 'checked' })
      assert.equal(ran.get(result.job.toString())?.size, 2, 'an unknown worker\'s result is run again elsewhere')
    })

    it('gives every job exactly one path through the state machine: successes, module failures, cancellations, missing workers', async () => {
      await requester.run({ module: echo, input: 'fine' })
      await assert.rejects(requester.run({ module: trap, input: '' }))
      const controller = new AbortController()
      const cancelled = requester.run({ module: spin, input: '5000', signal: controller.signal })
      setTimeout(() => { controller.abort() }, 300)
      await assert.rejects(cancelled)
      await assert.rejects(requester.run({ module: echo, input: 'too much', redundancy: 4 }), { name: 'NotEnoughWorkersError' })
      for await (const result of requester.map(echo, ['a', 'b', 'c', 'd'])) {
        assert.ok(result.ok)
      }
      assertOnePath(events, 8)
    })
  })

  describe('with a liar among three workers at redundancy 1', () => {
    let testnet: Testnet
    let requester: Peer
    after(async () => { await testnet?.stop() })
    before(async () => {
      testnet = await createTestnet(3, { slots: 2, faulty: { count: 1, fault: 'wrong-output' } })
      requester = await testnet.requester()
    })

    it('accepts no wrong output, bans the liar, and keeps its signed receipt as evidence', async () => {
      const liar = testnet.workers[0] as Peer
      const inputs = Array.from({ length: 60 }, (_, i) => `item ${i}`)
      for await (const result of requester.map(echo, inputs, { concurrency: 8 })) {
        assert.ok(result.ok, result.ok ? '' : result.error.message)
        assert.equal(result.result.text(), inputs[result.index]?.toUpperCase())
        assert.ok(result.result.receipts.every(r => r.receipt.worker !== liar.id), 'a receipt of the liar was accepted')
      }
      const record = requester.workers().find(w => w.peerId === liar.id)?.record
      assert.ok(record?.banned != null, `the liar is not banned: ${JSON.stringify(record)}`)
      assert.ok((await requester.evidence(liar.id)).length > 0)
      for (const honest of testnet.workers.slice(1)) {
        assert.equal(requester.workers().find(w => w.peerId === honest.id)?.record.banned, undefined, 'an honest worker was banned')
      }
    })
  })

  describe('with a slow worker among four', () => {
    let testnet: Testnet
    let requester: Peer
    after(async () => { await testnet?.stop() })
    before(async () => {
      testnet = await createTestnet(4, { faulty: { count: 1, fault: 'slow' } })
      requester = await testnet.requester({ spotCheck: false })
    })

    it('at a map\'s tail, a job stuck on the slow worker gets a backup copy on an idle one: the map does not wait for it, and the slow worker is not held to account', async () => {
      const slow = testnet.workers[0] as Peer
      let given = 0
      slow.addEventListener('work:start', () => { given++ })
      // 9 jobs of ~200 ms on four single-slot workers: 8 placed (a slot and a queued job each), 1 waits, then the tail:
      // two honest workers are idle after two jobs, in time to copy both of the slow worker's before their hedge (4 round trips)
      const inputs = Array.from({ length: 9 }, () => '200')
      for await (const result of requester.map(spin, inputs, { concurrency: 9 })) {
        assert.ok(result.ok, result.ok ? '' : `${result.error.name}: ${result.error.message}`)
        // the slow worker takes 5 s more: a result of its own would mean nothing copied its jobs
        assert.notEqual(result.result.worker, slow.id, `job ${result.index} waited for the slow worker`)
      }
      assert.ok(given > 0, 'the slow worker got no job: the test proves nothing')
      // a backup is no verdict on the worker it copies (a hedge, 4 × the round trip, would count a timeout)
      const record = requester.workers().find(w => w.peerId === slow.id)?.record
      assert.equal(record?.timeouts, 0, `the slow worker was held to account: ${JSON.stringify(record)}`)
    })
  })

  describe('with a trusted worker that stalls', () => {
    let testnet: Testnet
    let requester: Peer
    let reputationDir: string
    after(async () => {
      await testnet?.stop()
      await rm(reputationDir, { recursive: true, force: true })
    })
    before(async () => {
      testnet = await createTestnet(3, { faulty: { count: 1, fault: 'stall' } })
      // the requester has worked with the staller for long: its results are checked at the lowest rate (1 %)
      reputationDir = await mkdtemp(join(tmpdir(), 'wasmesh-engine-'))
      const store = new FsDatastore(reputationDir)
      await store.open()
      const trusted: PeerRecord = { successes: 1000, failures: 0, timeouts: 0, confirmed: 1000, disagreements: 0 }
      await store.put(new Key(`/wasmesh/reputation/${testnet.workers[0]?.id ?? ''}`), encodeCbor(trusted))
      await store.close()
      requester = await testnet.requester({ reputationDir })
    })

    it('a job that moves from a trusted worker to a new one has the new one\'s result checked, though the draw made for the first said no check', async () => {
      const staller = testnet.workers[0] as Peer
      const events: Array<{ job: string, worker: string }> = []
      requester.addEventListener('job:running', event => { events.push({ job: event.detail.job, worker: event.detail.worker ?? '' }) })
      // a lone run's check is drawn as it is placed (room no job waits for), for the trusted staller: 99 % no check.
      // The staller says it took the job and never answers: at the hedge time the job moves to a new worker, whose every result is
      // checked, so the draw must be made again for it
      // (1 in 10 placements explores a stranger first instead: then the job did not start on the staller, and we run another)
      for (let attempt = 1; ; attempt++) {
        const result = await requester.run({ module: echo, input: `moved ${attempt}` })
        const job = result.job.toString()
        if (events.find(e => e.job === job)?.worker !== staller.id) {
          assert.ok(attempt < 5, 'no job started on the trusted staller: the test proves nothing')
          continue
        }
        const signers = result.receipts.map(r => r.receipt.worker)
        assert.equal(signers.length, 2, `the new worker's result was accepted on its word alone (signed by ${signers.join(', ')})`)
        assert.ok(!signers.includes(staller.id))
        assert.equal(new Set(signers).size, 2)
        break
      }
    })
  })

  describe('with a worker that fakes failures', () => {
    for (const fault of ['fake-timeout', 'fake-trap'] as const) {
      for (const redundancy of [1, 2]) {
        it(`${fault} at redundancy ${redundancy}: the job succeeds elsewhere and the faker is convicted`, async () => {
          const testnet = await createTestnet(3, { slots: 2, faulty: { count: 1, fault } })
          try {
            const requester = await testnet.requester()
            const faker = testnet.workers[0] as Peer
            let given = 0
            faker.addEventListener('work:start', () => { given++ })
            // enough at once that the honest workers fill up and the newcomer gets some
            const inputs = Array.from({ length: 30 }, (_, i) => `job ${i}`)
            for await (const result of requester.map(echo, inputs, { redundancy, concurrency: 12 })) {
              assert.ok(result.ok, result.ok ? '' : `${result.error.name}: ${result.error.message}`)
              assert.equal(result.result.text(), inputs[result.index]?.toUpperCase())
            }
            assert.ok(given > 0, 'the faker got no job: the test proves nothing')
            const record = requester.workers().find(w => w.peerId === faker.id)?.record
            assert.ok(record?.banned != null, `the faker was not convicted: ${JSON.stringify(record)}`)
          } finally {
            await testnet.stop()
          }
        })
      }
    }
  })
})
