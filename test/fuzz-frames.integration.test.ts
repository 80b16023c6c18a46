import assert from 'node:assert/strict'
import { join } from 'node:path'
import { afterEach, before, describe, it, type TestContext } from 'node:test'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'
import { eventually, explain, ProcessNetwork, repoRoot, rssMiB } from './helpers/processes.ts'

const FUZZER = join(repoRoot, 'scripts', 'fuzz', 'frames.ts')

/**
 * A short run of the frame fuzzer (scripts/fuzz/frames.ts) against a live
 * worker and a live bootstrap node, each a real process; the long run is
 * `npm run fuzz`. Neither may crash or hang, their memory must come back,
 * and a normal job must still be served after.
 */
describe('frame fuzzing across processes', () => {
  let network: ProcessNetwork

  before(async () => {
    await buildWasm()
  })

  afterEach(async () => {
    await network?.stop()
  })

  it('1,500 random and mutated frames to a worker and a bootstrap node: both stay up, their memory comes back, and a normal job is served after', async (t: TestContext) => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31)
    network = await ProcessNetwork.start({ label: 'fuzz' })
    const worker = await network.startWorker('target', { slots: 2 })
    const address = (await worker.process.waitForLine(/^listening \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)).slice('listening '.length)
    const baseline = { worker: await rssMiB(worker.process.pid), bootstrap: await rssMiB(network.bootstrap.pid) }
    const fuzzer = network.spawnScript(FUZZER, ['--bootstrap', network.bootstrapAddr, '--worker', address, '--frames', '1500', '--seed', String(seed)])
    const done = await fuzzer.waitForLine(/^fuzz done/, 240_000)
    t.diagnostic(`seed ${seed}: ${done}`)
    assert.equal(worker.process.exit, undefined, 'the worker died')
    assert.equal(network.bootstrap.exit, undefined, 'the bootstrap node died')
    const result = await network.run(['run', wasmPath('echo'), '--input', '-', '--json'], 'after the fuzz')
    assert.equal(result.code, 0, explain(result))
    assert.equal(JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}').output, 'AFTER THE FUZZ')
    const settled = await eventually(async () => await rssMiB(worker.process.pid) <= baseline.worker * 1.25 && await rssMiB(network.bootstrap.pid) <= baseline.bootstrap * 1.25, 30_000)
    const after = { worker: await rssMiB(worker.process.pid), bootstrap: await rssMiB(network.bootstrap.pid) }
    t.diagnostic(`RSS worker ${baseline.worker.toFixed(0)} → ${after.worker.toFixed(0)} MiB, bootstrap ${baseline.bootstrap.toFixed(0)} → ${after.bootstrap.toFixed(0)} MiB`)
    assert.ok(settled, `memory did not come back: worker ${baseline.worker.toFixed(0)} → ${after.worker.toFixed(0)} MiB, bootstrap ${baseline.bootstrap.toFixed(0)} → ${after.bootstrap.toFixed(0)} MiB`)
  })
})
