import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createTestnet, type Testnet } from './helpers/testnet.ts'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'
import type { Peer } from '../protocol/peer.ts'

/**
 * The requester's persistent queue: a batch stored in the data dir survives
 * the requester's restart, and resuming it runs only what was not finished.
 */
describe('persistent batches', () => {
  let home: string
  let worker: Peer
  let testnet: Testnet

  before(async () => {
    await buildWasm()
    home = await mkdtemp(join(tmpdir(), 'wasmesh-batch-'))
    testnet = await createTestnet(1, { slots: 2 })
    worker = testnet.workers[0] as Peer
  })

  after(async () => {
    await testnet?.stop()
    await rm(home, { recursive: true, force: true })
  })

  it('resumes a batch after the requester restarts, without running finished jobs again', async () => {
    const dataDir = join(home, 'requester')
    const module = await readFile(wasmPath('echo'))
    const inputs = Array.from({ length: 40 }, (_, i) => `item ${i}`)
    const ran = new Set<string>()
    worker.addEventListener('work:start', event => { ran.add(event.detail.job) })

    let requester = await testnet.requester({ dataDir, spotCheck: false })
    const before: string[] = []
    for await (const result of requester.batch('nightly', module, inputs, { concurrency: 2 })) {
      assert.ok(result.ok)
      before.push(result.result.job.toString())
      if (before.length === 10) {
        break // the requester goes away mid-batch
      }
    }
    await requester.stop()
    const ranBefore = new Set(ran)

    requester = await testnet.requester({ dataDir, spotCheck: false })
    try {
      const [stored] = await requester.listBatches()
      assert.equal(stored?.id, 'nightly')
      assert.equal(stored?.total, 40)
      assert.ok(stored.done >= 10 && stored.done < 40, `done: ${stored.done}`)

      const outputs = new Map<number, string>()
      let resumed = 0
      for await (const result of requester.resume('nightly')) {
        assert.ok(result.ok, result.ok ? '' : result.error.message)
        outputs.set(result.index, result.result.text())
        resumed += result.result.resumed ? 1 : 0
        if (before.includes(result.result.job.toString())) {
          assert.equal(result.result.resumed, true, 'a job finished before the restart ran again')
        }
      }
      assert.equal(outputs.size, 40)
      for (const [index, input] of inputs.entries()) {
        assert.equal(outputs.get(index), input.toUpperCase())
      }
      assert.ok(resumed >= 10)
      // the worker saw no second start of a job finished before the restart
      const startsAfter = [...ran].filter(job => !ranBefore.has(job))
      for (const job of before) {
        assert.ok(!startsAfter.includes(job))
      }
      assert.equal((await requester.listBatches())[0]?.done, 40)
      await requester.deleteBatch('nightly')
      assert.deepEqual(await requester.listBatches(), [])
    } finally {
      await requester.stop()
    }
  })

  it('refuses an unknown batch id and a malformed one with clear errors', async () => {
    const requester = await testnet.requester()
    try {
      await assert.rejects(async () => { for await (const result of requester.resume('nope')) { assert.fail(`yielded ${result.index}`) } }, /no stored batch is named "nope"/)
      await assert.rejects(async () => { for await (const result of requester.batch('bad id!', new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]), ['x'])) { assert.fail(`yielded ${result.index}`) } }, { name: 'MalformedMessageError' })
    } finally {
      await requester.stop()
    }
  })
})
