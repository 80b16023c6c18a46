import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fromString, toString } from 'uint8arrays'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'
import { eventually, explain, runCli, ProcessNetwork, type TestWorker } from './helpers/processes.ts'

/**
 * The foundation end to end, with every node a separate OS process driven
 * through the CLI: a bootstrap node, two worker peers, and one requester
 * process per `wasmesh run`. The tests run in order and share the network.
 */
describe('wasmesh CLI across processes', () => {
  let network: ProcessNetwork
  let workers: TestWorker[]

  before(async () => {
    await buildWasm()
    network = await ProcessNetwork.start()
    // both export metrics, so the jobs the tests below run show up in their counters
    workers = await Promise.all(['worker-a', 'worker-b'].map(async name => network.startWorker(name, { args: ['--metrics-port', '0'] })))
  })

  after(async () => {
    await network?.stop()
  })

  it('runs a WASI job on a worker and verifies its receipt', async () => {
    const result = await network.run(['run', wasmPath('echo'), '--input', '-', '--json'], 'hello mesh')
    assert.equal(result.code, 0, explain(result))
    const json = JSON.parse(result.stdout)
    assert.equal(json.ok, true)
    assert.equal(json.output, 'HELLO MESH')
    assert.ok(workers.some(w => w.peerId === json.worker), `ran on ${json.worker}, not one of our workers`)
    assert.equal(json.receipt.worker, json.worker)
    assert.equal(json.receipt.exitCode, 0)
    assert.equal(json.receipt.stats.moduleCached, false)
  })

  it('writes raw output to stdout and a summary to stderr without --json', async () => {
    const result = await network.run(['run', wasmPath('echo'), '--input', '-'], 'plain')
    assert.equal(result.code, 0, explain(result))
    assert.equal(result.stdout, 'PLAIN')
    assert.match(result.stderr, /^job bafy\S+ ran on 12D3Koo\S+ in [\d.]+ ms .*receipt verified/)
  })

  it('does not fetch or compile the module again for a second job', async () => {
    const result = await network.run(['run', wasmPath('echo'), '--input', '-', '--json'], 'second')
    assert.equal(result.code, 0, explain(result))
    const json = JSON.parse(result.stdout)
    assert.equal(json.output, 'SECOND')
    // the scheduler prefers the worker whose advert lists the module as cached
    assert.equal(json.receipt.stats.moduleCached, true)
    assert.equal(json.receipt.stats.fetchMs, 0)
  })

  it('a worker serves Prometheus metrics (its jobs by outcome, its slots, libp2p\'s) and a health check', async () => {
    let served = 0
    for (const worker of workers) {
      const url = (await worker.process.waitForLine(/^metrics: http:\/\/\S+\/metrics$/, 10_000, 'stderr')).slice('metrics: '.length)
      const metrics = await (await fetch(url)).text()
      served += Number(/^wasmesh_jobs_served_total\{outcome="ok"\} (\d+)$/m.exec(metrics)?.[1] ?? 0)
      assert.match(metrics, /^wasmesh_slots\{state="total"\} 1$/m)
      assert.match(metrics, /^wasmesh_capacity_workers \d+$/m)
      assert.match(metrics, /^libp2p_connection_manager_connections\{[^}]*\} \d+$/m)
      assert.match(metrics, /^process_resident_memory_bytes \d+/m)
      const health = await fetch(new URL('/healthz', url))
      assert.equal(health.status, 200)
      assert.deepEqual({ ...await health.json() as object, connections: 0 }, { status: 'ok', peerId: worker.peerId, connections: 0, slots: 1, running: 0 })
      assert.equal((await fetch(new URL('/', url))).status, 404, 'nothing else is served')
    }
    assert.ok(served >= 3, `the workers counted ${served} jobs served, after the three above`)
  })

  it('rejects a tampered receipt and accepts the original', async () => {
    const result = await network.run(['run', wasmPath('echo'), '--input', '-', '--json'], 'evidence')
    const json = JSON.parse(result.stdout)
    const original = join(network.home, 'receipt.json')
    await writeFile(original, result.stdout)
    const valid = await runCli(['verify', original], network.env)
    assert.equal(valid.code, 0, explain(valid))
    assert.match(valid.stdout, new RegExp(`valid receipt: job ${json.job} run by ${json.worker}`))

    const signed = fromString(json.receipt.signed, 'base64')
    // flip one byte inside the signed payload (past the CBOR envelope header)
    signed[signed.length - 80] = (signed[signed.length - 80] as number) ^ 0x01
    const tampered = join(network.home, 'tampered.json')
    await writeFile(tampered, JSON.stringify({ ...json, receipt: { ...json.receipt, signed: toString(signed, 'base64') } }))
    const rejected = await runCli(['verify', tampered], network.env)
    assert.notEqual(rejected.code, 0)
    assert.match(rejected.stderr, /invalid receipt: /)
  })

  it('reports a module that is not Wasm with a clear error, and the worker stays up', async () => {
    const bogus = join(network.home, 'not.wasm')
    await writeFile(bogus, 'this is not webassembly')
    const result = await network.run(['run', bogus])
    assert.equal(result.code, 1)
    assert.match(result.stderr, /InvalidModuleError: .*not a WebAssembly module/)
    const next = await network.run(['run', wasmPath('echo'), '--input', '-'], 'still up')
    assert.equal(next.code, 0, explain(next))
    assert.equal(next.stdout, 'STILL UP')
  })

  it('says which file it cannot read, for a missing module or --input, and exits 2 without joining', async () => {
    const missing = join(network.home, 'missing.wasm')
    const noModule = await network.run(['run', missing])
    assert.equal(noModule.code, 2, explain(noModule))
    assert.match(noModule.stderr, new RegExp(`cannot read the module ${missing}: no such file`))
    const noInput = await network.run(['run', wasmPath('echo'), '--input', 'hello'])
    assert.equal(noInput.code, 2, explain(noInput))
    assert.match(noInput.stderr, /cannot read the --input file hello: no such file \(give a file, or - for this process's stdin\)/)
    const folder = await network.run(['run', wasmPath('echo'), '--input', network.home])
    assert.match(folder.stderr, /it is a folder, not a file/)
  })

  it('moves a job to another worker when its worker is killed mid-job', async () => {
    const started = network.run(['run', wasmPath('spin'), '--input', '-', '--json'], '3000')
    // whichever worker prints that it started the spin job is killed
    const victim = await Promise.any(workers.map(async w => {
      await w.process.waitForLine(/^job started /, 60_000)
      return w
    }))
    victim.process.kill('SIGKILL')
    const result = await started
    assert.equal(result.code, 0, explain(result))
    const json = JSON.parse(result.stdout)
    assert.equal(json.output, 'done\n')
    const survivor = workers.find(w => w !== victim)
    assert.equal(json.worker, survivor?.peerId)
    workers = workers.filter(w => w !== victim)
  })

  it('stops an infinite loop at its time limit, then the same worker serves the next job', async () => {
    const loop = await network.run(['run', wasmPath('loop'), '--timeout', '1000', '--json'])
    assert.equal(loop.code, 1)
    const json = JSON.parse(loop.stdout)
    assert.equal(json.ok, false)
    assert.equal(json.error.name, 'TimeLimitError')
    assert.match(json.error.message, /time limit of 1000 ms/)
    assert.equal(json.receipt.worker, workers[0]?.peerId)

    const next = await network.run(['run', wasmPath('echo'), '--input', '-', '--json'], 'after the loop')
    assert.equal(next.code, 0, explain(next))
    const nextJson = JSON.parse(next.stdout)
    assert.equal(nextJson.output, 'AFTER THE LOOP')
    assert.equal(nextJson.worker, workers[0]?.peerId)
  })

  it('lists workers and their capacity with status', async () => {
    const result = await network.run(['status', '--json'])
    assert.equal(result.code, 0, explain(result))
    const { peers } = JSON.parse(result.stdout)
    const worker = peers.find((p: { peerId: string }) => p.peerId === workers[0]?.peerId)
    assert.ok(worker, `status did not list ${workers[0]?.peerId}: ${result.stdout}`)
    assert.deepEqual(worker.slots, { total: 1, free: 1 })
    assert.ok(worker.cached.length >= 1)
  })

  it('logs JSON lines with --log-format json, and only warnings and errors with --log-level warn', async () => {
    const json = network.spawn(['peer', '--log-format', 'json', '--bootstrap', network.bootstrapAddr, '--data', join(network.home, 'json-logger')])
    const first = JSON.parse(await json.waitForLine(/^\{/, 60_000))
    assert.equal(first.slots, 1)
    const line = JSON.parse(await json.waitForLine(/^\{.*"msg":"listening /, 60_000))
    assert.equal(line.level, 'info')
    assert.match(line.address, /^\/ip4\/127\.0\.0\.1\//)
    assert.ok(!Number.isNaN(Date.parse(line.time)), `time ${line.time}`)
    await json.stop()
    const advertising = async (): Promise<string[]> => JSON.parse((await network.run(['status', '--json'])).stdout).peers.map((p: { peerId: string }) => p.peerId)
    const known = new Set([...await advertising(), first.peer])
    const quiet = network.spawn(['peer', '--log-level', 'warn', '--bootstrap', network.bootstrapAddr, '--data', join(network.home, 'quiet-logger')])
    // it joined (a worker nobody knew advertises), yet said nothing at info level
    assert.ok(await eventually(async () => (await advertising()).some(id => !known.has(id)), 60_000), 'the quiet peer never advertised')
    await quiet.stop()
    assert.deepEqual(quiet.lines, [], 'lines were printed at --log-level warn')
  })

  it('keeps its peer id and cached modules across a restart', async () => {
    const survivor = workers[0]
    assert.ok(survivor)
    survivor.process.kill('SIGTERM')
    await survivor.process.exited
    const restarted = await network.startWorker(survivor.name)
    assert.equal(restarted.peerId, survivor.peerId)
    const result = await network.run(['run', wasmPath('echo'), '--input', '-', '--json'], 'restarted')
    assert.equal(result.code, 0, explain(result))
    const json = JSON.parse(result.stdout)
    assert.equal(json.worker, survivor.peerId)
    // the module is in the worker's blockstore: compiled anew, but not fetched from the network
    assert.equal(json.receipt.stats.moduleCached, false)
  })

  it('fails with a clear error when no bootstrap node is reachable', async () => {
    const result = await runCli(['run', wasmPath('echo'), '--bootstrap', '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWAvKUgNqkaUq2mx8zND5geyvjT9716UY97biWzx4FLHWS'], network.env)
    assert.equal(result.code, 3)
    assert.match(result.stderr, /BootstrapError: could not reach any bootstrap node/)
  })

  it('explains start-up mistakes in words and exits 2: a bad multiaddr, a port in use, a data directory in use', async () => {
    const bad = await runCli(['run', wasmPath('echo'), '--bootstrap', '/ip4/nonsense'], network.env)
    assert.equal(bad.code, 2, explain(bad))
    assert.match(bad.stderr, /"\/ip4\/nonsense" is not a multiaddr/)

    const port = Number(/\/tcp\/(\d+)\//.exec(network.bootstrapAddr)?.[1])
    const taken = await runCli(['bootstrap', '--port', String(port), '--data', join(network.home, 'second-bootstrap')], network.env)
    assert.equal(taken.code, 2, explain(taken))
    assert.match(taken.stderr, new RegExp(`ListenError: could not listen on /ip4/127.0.0.1/tcp/${port} \\(EADDRINUSE`))
    assert.doesNotMatch(taken.stderr, /faultTolerance|\n\s+at /, 'libp2p\'s advice or a stack trace reached the user')

    // a worker still running holds its data directory (an earlier test kills one)
    const running = network.workers.find(w => w.process.exit == null)
    assert.ok(running != null, 'no worker left running')
    const busy = await runCli(['peer', '--bootstrap', network.bootstrapAddr, '--data', join(network.home, running.name)], network.env)
    assert.equal(busy.code, 2, explain(busy))
    assert.match(busy.stderr, new RegExp(`DataDirError: could not open the database in .*${running.name}.*another wasmesh process may be using it`))
  })
})
