import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, before, describe, it, type TestContext } from 'node:test'
import { fromString, toString } from 'uint8arrays'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'
import { batchFinished, checkOutputs, startBatch, wrongOutputs, writeInputs } from './helpers/batches.ts'
import { explain, ProcessNetwork, runCli, type TestWorker } from './helpers/processes.ts'

const LIAR = { env: { WASMESH_TEST_FAULT: 'wrong-output' } }

/** Jobs the worker's log says it started. */
const started = (worker: TestWorker): number => worker.process.lines.filter(line => line.startsWith('job started ')).length

/**
 * Verified results through the CLI, every node a separate process: distinct
 * workers for redundancy, checks that catch a liar at redundancy 1, colluders
 * who cannot ban the honest, a caught liar that stays caught across CLI runs,
 * and `wasmesh verify` against edited receipts.
 */
describe('the engine across processes', () => {
  let network: ProcessNetwork

  before(async () => {
    await buildWasm()
  })

  afterEach(async () => {
    await network?.stop()
  })

  it('redundancy 2 with one worker fails clearly and runs the job once; with two workers it returns two distinct receipts', async () => {
    network = await ProcessNetwork.start({ label: 'engine' })
    const first = await network.startWorker('first')
    const alone = await network.run(['run', wasmPath('echo'), '--input', '-', '--redundancy', '2', '--json'], 'twice')
    assert.equal(alone.code, 3, explain(alone))
    const failure = JSON.parse(alone.stdout) as { ok: boolean, error: { name: string, message: string } }
    assert.equal(failure.error.name, 'NotEnoughWorkersError')
    assert.match(failure.error.message, /needs 2 distinct workers, and only 1/)
    assert.equal(started(first), 1, 'the only worker ran the job more than once')

    const second = await network.startWorker('second')
    const both = await network.run(['run', wasmPath('echo'), '--input', '-', '--redundancy', '2', '--json'], 'twice over')
    assert.equal(both.code, 0, explain(both))
    const result = JSON.parse(both.stdout) as { output: string, receipts: number }
    assert.equal(result.output, 'TWICE OVER')
    assert.equal(result.receipts, 2)
    assert.equal(started(second), 1, 'the second worker did not run the job')
  })

  it('four honest workers and a liar at redundancy 1, 1,000 jobs: no wrong output, the liar banned, and what checking costs', async (t: TestContext) => {
    network = await ProcessNetwork.start({ label: 'engine' })
    await network.startWorkers(4, { slots: 2 })
    const { dir, expected } = await writeInputs(network, 1000)
    const calmAt = performance.now()
    const calm = await batchFinished(startBatch(network, 'echo', dir, join(network.home, 'out-honest')))
    const calmMs = performance.now() - calmAt
    assert.equal(calm.code, 0, JSON.stringify(calm.summary.failures.slice(0, 3)))
    await checkOutputs(join(network.home, 'out-honest'), expected)

    const liar = await network.startWorker('liar', { slots: 2, ...LIAR })
    const liarAt = performance.now()
    const { code, summary } = await batchFinished(startBatch(network, 'echo', dir, join(network.home, 'out')))
    const liarMs = performance.now() - liarAt
    assert.equal(code, 0, JSON.stringify(summary.failures.slice(0, 3)))
    assert.deepEqual(await wrongOutputs(join(network.home, 'out'), expected), [])
    await checkOutputs(join(network.home, 'out'), expected)
    const record = summary.workers.find(w => w.peerId === liar.peerId)
    assert.ok(record?.banned != null, `the liar was not banned: ${JSON.stringify(record)}`)
    for (const honest of summary.workers.filter(w => w.peerId !== liar.peerId)) {
      assert.equal(honest.banned, undefined, `an honest worker was banned: ${JSON.stringify(honest)}`)
    }
    t.diagnostic(`honest network: ${calm.summary.executions} executions for 1000 jobs (${((calm.summary.executions - 1000) / 10).toFixed(1)} extra per 100), ${Math.round(calmMs)} ms`)
    t.diagnostic(`with a liar: ${summary.executions} executions for 1000 jobs (${((summary.executions - 1000) / 10).toFixed(1)} extra per 100), ${summary.rerun} rerun after healing, liar ran ${started(liar)} jobs, ${Math.round(liarMs)} ms`)
  })

  it('a sleeper that earns trust and then lies at redundancy 1: once caught, what it slipped through is run again, and no wrong output remains', async (t: TestContext) => {
    network = await ProcessNetwork.start({ label: 'engine' })
    await network.startWorkers(3, { slots: 2 })
    const sleeper = await network.startWorker('sleeper', { slots: 2, env: { WASMESH_TEST_FAULT: 'sleeper' } })
    const { dir, expected } = await writeInputs(network, 1000)
    const { code, summary } = await batchFinished(startBatch(network, 'echo', dir, join(network.home, 'out')))
    assert.equal(code, 0, JSON.stringify(summary.failures.slice(0, 3)))
    const record = summary.workers.find(w => w.peerId === sleeper.peerId)
    assert.ok(record?.banned != null, `the sleeper was not caught: ${JSON.stringify(record)} after ${started(sleeper)} jobs`)
    const wrong = await wrongOutputs(join(network.home, 'out'), expected)
    assert.deepEqual(wrong, [], `${wrong.length} wrong outputs remain; ${summary.rerun} were run again`)
    assert.ok(summary.rerun > 0, 'nothing was run again: the sleeper slipped nothing through, and healing went untested')
    t.diagnostic(`sleeper: caught after ${started(sleeper)} jobs, ${summary.rerun} of its results run again, ${summary.executions} executions for 1000 jobs`)
  })

  it('two colluding liars of five at redundancy 2: the honest are never banned, the colluders are, and no wrong output remains', async (t: TestContext) => {
    network = await ProcessNetwork.start({ label: 'engine' })
    await network.startWorkers(3, { slots: 2 })
    const liars = await Promise.all(['liar-1', 'liar-2'].map(async name => network.startWorker(name, { slots: 2, ...LIAR })))
    const { dir, expected } = await writeInputs(network, 200)
    const { code, summary } = await batchFinished(startBatch(network, 'echo', dir, join(network.home, 'out'), ['--redundancy', '2', '--concurrency', '16']))
    assert.equal(code, 0, JSON.stringify(summary.failures.slice(0, 3)))
    for (const worker of summary.workers) {
      const isLiar = liars.some(l => l.peerId === worker.peerId)
      assert.equal(worker.banned != null, isLiar, `${isLiar ? 'a colluder went free' : 'an honest worker was banned'}: ${JSON.stringify(worker)}`)
    }
    const wrong = await wrongOutputs(join(network.home, 'out'), expected)
    assert.deepEqual(wrong, [], `${wrong.length} wrong outputs remain; ${summary.rerun} were run again; ${JSON.stringify(summary.workers)}`)
    t.diagnostic(`colluders: ${summary.executions} executions for 200 jobs at redundancy 2, ${summary.rerun} jobs the colluders had agreed on were run again`)
  })

  it('ten CLI runs in a row with a liar among two workers: every output right, and once caught the liar gets no more jobs', async () => {
    network = await ProcessNetwork.start({ label: 'engine' })
    await network.startWorker('honest')
    const liar = await network.startWorker('liar', LIAR)
    let caughtAfter: number | undefined
    for (let i = 0; i < 10; i++) {
      const result = await network.run(['run', wasmPath('echo'), '--input', '-', '--json'], `run ${i}`)
      assert.equal(result.code, 0, explain(result))
      assert.equal((JSON.parse(result.stdout) as { output: string }).output, `RUN ${i}`)
      if (caughtAfter == null && started(liar) > 0) {
        caughtAfter = started(liar)
      }
    }
    assert.ok(caughtAfter != null, 'the liar never got a job: the test proves nothing')
    assert.equal(started(liar), caughtAfter, 'the liar got jobs after it was caught: later CLI runs forgot it')
  })

  it('verify checks the signature, the job and the output, and explains bad input', async () => {
    network = await ProcessNetwork.start({ label: 'engine' })
    await network.startWorker('w')
    const result = await network.run(['run', wasmPath('echo'), '--input', '-', '--json'], 'verified')
    assert.equal(result.code, 0, explain(result))
    const json = JSON.parse(result.stdout) as { job: string, output: string, outputBase64: string, receipt: { signed: string } }
    const write = async (name: string, value: unknown): Promise<string> => {
      const path = join(network.home, name)
      await writeFile(path, typeof value === 'string' ? value : JSON.stringify(value))
      return path
    }
    const verify = async (...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> => runCli(['verify', ...args], network.env)

    const valid = await verify(await write('valid.json', json))
    assert.equal(valid.code, 0, explain(valid))
    assert.match(valid.stdout, /valid receipt: .*output matches the signed hash/)

    const edited = await verify(await write('edited.json', { ...json, output: 'SOMETHING ELSE', outputBase64: toString(fromString('SOMETHING ELSE'), 'base64') }))
    assert.equal(edited.code, 1, explain(edited))
    assert.match(edited.stderr, /invalid receipt: the output does not match the hash/)

    const editedText = await verify(await write('edited-text.json', { ...json, output: 'VERIFIEd' }))
    assert.equal(editedText.code, 1, explain(editedText))

    const outputFile = await write('output.bin', 'not what was signed')
    const wrongFile = await verify(await write('plain.json', { receipt: json.receipt }), '--output', outputFile)
    assert.equal(wrongFile.code, 1, explain(wrongFile))

    const signed = fromString(json.receipt.signed, 'base64')
    signed[signed.length - 1] = (signed[signed.length - 1] as number) ^ 0x01
    const badSignature = await verify(await write('signature.json', { ...json, receipt: { signed: toString(signed, 'base64') } }))
    assert.equal(badSignature.code, 1, explain(badSignature))

    const other = await network.run(['run', wasmPath('echo'), '--input', '-', '--json'], 'another job')
    const otherJob = (JSON.parse(other.stdout) as { job: string }).job
    const replayed = await verify(await write('replayed.json', { ...json, job: otherJob }))
    assert.equal(replayed.code, 1, explain(replayed))
    assert.match(replayed.stderr, /invalid receipt: .*is for job/)

    const garbage = await verify(await write('garbage.json', '{ not json'))
    assert.equal(garbage.code, 2, explain(garbage))
    assert.match(garbage.stderr, /is not the JSON `wasmesh run --json` prints/)
    assert.doesNotMatch(garbage.stderr, /SyntaxError: /)
    const missing = await verify(join(network.home, 'nope.json'))
    assert.equal(missing.code, 2, explain(missing))
  })
})
