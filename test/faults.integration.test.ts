import assert from 'node:assert/strict'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, before, describe, it } from 'node:test'
import { decodeSignedReceipt, encodeSignedReceipt } from '../protocol/wire/receipt.ts'
import { decodeCbor, encodeCbor } from '../protocol/wire/cbor.ts'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'
import { batchFinished, checkOutputs, startBatch, writeInputs } from './helpers/batches.ts'
import { explain, runCli, ProcessNetwork, rssMiB } from './helpers/processes.ts'
import { fromString, toString } from 'uint8arrays'

/**
 * Jobs that survive churn and liars: every test runs a real network of
 * processes on loopback and checks what a user would see: every output back
 * and correct, no job lost or accepted twice, liars banned, stalls and dead
 * bootstrap nodes routed around. Each test starts its own network.
 */
describe('faults across processes', () => {
  let network: ProcessNetwork

  before(async () => {
    await buildWasm()
  })

  afterEach(async () => {
    await network?.stop()
  })

  it('churn: half of four workers die during a 1,000-job batch; every output comes back once and correct', async () => {
    network = await ProcessNetwork.start()
    const workers = await Promise.all(['w1', 'w2', 'w3', 'w4'].map(async name => network.startWorker(name, { slots: 2 })))
    const { dir, expected } = await writeInputs(network, 1000)

    const calm = Date.now()
    const baseline = await batchFinished(startBatch(network, 'echo', dir, join(network.home, 'out-calm')))
    const calmMs = Date.now() - calm
    assert.equal(baseline.code, 0)

    const churned = Date.now()
    const run = startBatch(network, 'echo', dir, join(network.home, 'out'))
    // once a tenth of the batch is back, kill two workers without warning
    await waitFor(async () => (await readdir(join(network.home, 'out')).catch(() => [])).length > 100)
    for (const victim of workers.slice(0, 2)) {
      victim.process.kill('SIGKILL')
    }
    const { code, summary } = await batchFinished(run)
    const churnMs = Date.now() - churned
    assert.equal(code, 0, JSON.stringify(summary.failures.slice(0, 3)))
    assert.equal(summary.done, 1000)
    assert.equal(summary.failed, 0)
    await checkOutputs(join(network.home, 'out'), expected)
    // one receipt per input, each for a distinct job: nothing accepted twice
    const receipts = await readdir(join(network.home, 'out', '.wasmesh', 'receipts'))
    assert.equal(receipts.length, 1000)
    const jobs = new Set(await Promise.all(receipts.map(async file => (JSON.parse(await readFile(join(network.home, 'out', '.wasmesh', 'receipts', file), 'utf8')) as { job: string }).job)))
    assert.equal(jobs.size, 1000)
    console.log(`churn: 1000 jobs in ${churnMs} ms with 2 of 4 workers killed, ${calmMs} ms without: ratio ${(churnMs / calmMs).toFixed(2)}`)
  })

  it('liar: with redundancy 2, a worker returning wrong outputs under valid signatures is outvoted and banned', async () => {
    network = await ProcessNetwork.start()
    await network.startWorker('honest-1', { slots: 2 })
    await network.startWorker('honest-2', { slots: 2 })
    const liar = await network.startWorker('liar', { slots: 2, env: { WASMESH_TEST_FAULT: 'wrong-output' } })
    const { dir, expected } = await writeInputs(network, 40)
    const { code, summary } = await batchFinished(startBatch(network, 'echo', dir, join(network.home, 'out'), ['--redundancy', '2', '--concurrency', '4']))
    assert.equal(code, 0, JSON.stringify(summary.failures.slice(0, 3)))
    await checkOutputs(join(network.home, 'out'), expected)
    const record = summary.workers.find(w => w.peerId === liar.peerId)
    assert.ok(record?.banned != null, `the liar was not banned: ${JSON.stringify(summary.workers)}`)
    assert.ok(record.disagreements >= 1)
    for (const honest of summary.workers.filter(w => w.peerId !== liar.peerId)) {
      assert.equal(honest.banned, undefined, `an honest worker was banned: ${JSON.stringify(honest)}`)
    }
  })

  it('stall: jobs taken by a worker that never answers move to the others', async () => {
    network = await ProcessNetwork.start()
    await network.startWorker('stall', { slots: 2, env: { WASMESH_TEST_FAULT: 'stall' } })
    await network.startWorker('ok-1', { slots: 1 })
    await network.startWorker('ok-2', { slots: 1 })
    const { dir, expected } = await writeInputs(network, 12)
    const { code, summary } = await batchFinished(startBatch(network, 'echo', dir, join(network.home, 'out'), ['--timeout', '2000']))
    assert.equal(code, 0, JSON.stringify(summary.failures.slice(0, 3)))
    await checkOutputs(join(network.home, 'out'), expected)
  })

  it('forged receipts: a changed byte, a swapped peer id, and a receipt replayed for another job are refused', async () => {
    network = await ProcessNetwork.start()
    const worker = await network.startWorker('w', { slots: 1 })
    const other = await network.startWorker('other', { slots: 1 })
    const first = await network.run(['run', wasmPath('echo'), '--input', '-', '--json'], 'one')
    const second = await network.run(['run', wasmPath('echo'), '--input', '-', '--json'], 'two')
    assert.equal(first.code, 0, explain(first))
    assert.equal(second.code, 0, explain(second))
    const json = JSON.parse(first.stdout)
    const secondJob = JSON.parse(second.stdout).job as string

    const verify = async (name: string, signed: Uint8Array, extra: string[] = []): Promise<{ code: number | null, stderr: string }> => {
      const file = join(network.home, `${name}.json`)
      await writeFile(file, JSON.stringify({ ...json, receipt: { ...json.receipt, signed: toString(signed, 'base64') } }))
      return runCli(['verify', file, ...extra], network.env)
    }
    const original = fromString(json.receipt.signed, 'base64')
    assert.equal((await verify('original', original, ['--job', json.job])).code, 0)

    const signed = decodeSignedReceipt(original)
    const payload = decodeCbor(signed.payload, 'receipt') as Record<string, unknown>
    const swapped = encodeSignedReceipt({ payload: encodeCbor({ ...payload, worker: payload.worker === worker.peerId ? other.peerId : worker.peerId }), signature: signed.signature })
    const swappedResult = await verify('swapped', swapped)
    assert.notEqual(swappedResult.code, 0)
    assert.match(swappedResult.stderr, /invalid receipt: /)

    const changed = encodeSignedReceipt({ payload: encodeCbor({ ...payload, exitCode: 1 }), signature: signed.signature })
    const changedResult = await verify('changed', changed)
    assert.notEqual(changedResult.code, 0)
    assert.match(changedResult.stderr, /invalid receipt: /)

    const replayed = await verify('replayed', original, ['--job', secondJob])
    assert.notEqual(replayed.code, 0)
    assert.match(replayed.stderr, /invalid receipt: the receipt is for job/)
  })

  it('restart: a requester killed mid-batch resumes with the same --out and runs no finished job again', async () => {
    network = await ProcessNetwork.start()
    const workers = await Promise.all([network.startWorker('w1', { slots: 1 }), network.startWorker('w2', { slots: 1 })])
    const { dir, expected } = await writeInputs(network, 300)
    const out = join(network.home, 'out')
    const first = startBatch(network, 'echo', dir, out, ['--concurrency', '8'])
    await waitFor(async () => (await readdir(join(out, '.wasmesh', 'receipts')).catch(() => [])).length > 60)
    first.kill('SIGKILL')
    await first.exited
    const doneBefore = await readdir(join(out, '.wasmesh', 'receipts'))
    const jobsBefore = await Promise.all(doneBefore.map(async file => (JSON.parse(await readFile(join(out, '.wasmesh', 'receipts', file), 'utf8')) as { job: string }).job))
    const linesBefore = workers.map(w => w.process.lines.length)

    const { code, summary } = await batchFinished(startBatch(network, 'echo', dir, out, ['--concurrency', '8']))
    assert.equal(code, 0)
    assert.equal(summary.done, 300)
    assert.ok(summary.resumed >= doneBefore.length, `resumed ${summary.resumed}, but ${doneBefore.length} were done before the restart`)
    await checkOutputs(out, expected)
    // no worker started any job again that was finished before the restart
    const rerun = workers.flatMap((w, i) => w.process.lines.slice(linesBefore[i]).filter(line => line.startsWith('job started ')).map(line => line.split(' ')[2]))
    for (const job of jobsBefore) {
      assert.ok(!rerun.includes(job), `job ${job} ran again after the restart`)
    }
  })

  it('bootstrap loss: running jobs finish, and a new peer gets a clear error', async () => {
    network = await ProcessNetwork.start()
    await network.startWorker('w', { slots: 1 })
    const job = network.run(['run', wasmPath('spin'), '--input', '-', '--json'], '2000')
    await waitFor(async () => network.processes.some(p => p.lines.some(line => line.startsWith('job started '))))
    network.bootstrap.kill('SIGKILL')
    const result = await job
    assert.equal(result.code, 0, explain(result))
    assert.equal(JSON.parse(result.stdout).output, 'done\n')
    const late = await network.run(['status'])
    assert.equal(late.code, 3)
    assert.match(late.stderr, /BootstrapError: could not reach any bootstrap node/)
  })

  it('flood: a requester asking for ten times the capacity gets busy answers, worker memory stays bounded, and a second requester is served', async () => {
    network = await ProcessNetwork.start()
    const workers = await Promise.all([network.startWorker('w1', { slots: 1 }), network.startWorker('w2', { slots: 1 })])
    const { dir } = await writeInputs(network, 60, { spinMs: 200 })
    const flood = startBatch(network, 'spin', dir, join(network.home, 'out'), ['--concurrency', '20'])
    await waitFor(async () => workers.every(w => w.process.lines.some(line => line.startsWith('job started '))))
    const rssBefore = await Promise.all(workers.map(async w => rssMiB(w.process.pid)))
    const served = await network.run(['run', wasmPath('echo'), '--input', '-', '--json'], 'me too')
    assert.equal(served.code, 0, explain(served))
    assert.equal(JSON.parse(served.stdout).output, 'ME TOO')
    assert.equal(flood.child.exitCode, null, 'the flood ended before the second requester was served: the test proves nothing')
    const rssDuring = await Promise.all(workers.map(async w => rssMiB(w.process.pid)))
    for (const [i, rss] of rssDuring.entries()) {
      assert.ok(rss < (rssBefore[i] as number) + 100, `worker ${i} grew from ${rssBefore[i]} to ${rss} MiB under the flood`)
    }
    const { code } = await batchFinished(flood)
    assert.equal(code, 0)
  })
})

async function waitFor (condition: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const giveUp = Date.now() + timeoutMs
  while (!await condition()) {
    if (Date.now() > giveUp) {
      throw new Error(`condition not met within ${timeoutMs} ms`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}


