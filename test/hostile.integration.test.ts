import assert from 'node:assert/strict'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, before, describe, it, type TestContext } from 'node:test'
import { FsDatastore } from 'datastore-fs'
import { Key } from 'interface-datastore'
import { decodeCbor } from '../protocol/wire/cbor.ts'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'
import { batchFinished, startBatch, writeInputs } from './helpers/batches.ts'
import { eventually, explain, ProcessNetwork, repoRoot, rssMiB, type NodeProcess, type TestWorker } from './helpers/processes.ts'
import type { PeerRecord } from '../protocol/job/reputation.ts'

const HOSTILE = join(repoRoot, 'test', 'helpers', 'hostile-peer.ts')

interface RunJson { ok: boolean, worker?: string, output?: string, durationMs?: number, error?: { name: string, message: string } }

/** Bytes under a folder. */
async function diskBytes (dir: string): Promise<number> {
  let total = 0
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (entry.isFile()) {
      total += (await stat(join(entry.parentPath, entry.name)).catch(() => ({ size: 0 }))).size
    }
  }
  return total
}

/**
 * No single hostile peer stops the mesh. Every attacker here is a separate
 * process built from our own libp2p stack (test/helpers/hostile-peer.ts),
 * beside real worker and requester processes.
 */
describe('hostile peers across processes', () => {
  let network: ProcessNetwork

  before(async () => {
    await buildWasm()
  })

  afterEach(async () => {
    await network?.stop()
  })

  /** Starts the hostile tool and waits until its peers are in place. */
  async function hostile (behaviour: string, extra: string[] = []): Promise<NodeProcess> {
    const attacker = network.spawnScript(HOSTILE, [behaviour, '--bootstrap', network.bootstrapAddr, ...extra])
    await attacker.waitForLine(/^hostile ready/, 120_000)
    return attacker
  }

  async function job (input: string, extra: string[] = []): Promise<{ code: number | null, json: RunJson, explained: string }> {
    const result = await network.run(['run', wasmPath('echo'), '--input', '-', '--json', ...extra], input)
    return { code: result.code, json: JSON.parse(result.stdout.trim().split('\n').at(-1) || '{}') as RunJson, explained: explain(result) }
  }

  for (const [behaviour, count] of [['busy', 1], ['undialable', 4], ['silent', 6], ['heartbeat', 1]] as const) {
    it(`${count} ${behaviour} peer${count > 1 ? 's' : ''} advertising 1,024 slots beside one honest worker: a normal job completes within 10 s`, async (t: TestContext) => {
      network = await ProcessNetwork.start({ label: 'hostile' })
      const honest = await network.startWorker('honest')
      await hostile(behaviour, ['--count', String(count)])
      const { code, json, explained } = await job(`against ${behaviour}`)
      assert.equal(code, 0, explained)
      assert.equal(json.output, `AGAINST ${behaviour.toUpperCase()}`)
      assert.equal(json.worker, honest.peerId)
      assert.ok((json.durationMs ?? Infinity) < 10_000, `the job took ${json.durationMs} ms`)
      t.diagnostic(`${behaviour} ×${count}: job done in ${Math.round(json.durationMs ?? 0)} ms`)
    })
  }

  it('a receipt naming an output nobody serves fails within a bounded time with a clear error, and the worker is marked', async () => {
    network = await ProcessNetwork.start({ label: 'hostile' })
    const attacker = await hostile('unserved-output')
    const liar = attacker.lines.find(line => line.startsWith('hostile ready'))?.split(' ')[2] as string
    const startedAt = Date.now()
    const alone = await job('where is my output')
    assert.equal(alone.code, 3, alone.explained)
    assert.match(alone.json.error?.message ?? '', /output/)
    assert.ok(Date.now() - startedAt < 40_000, `it took ${Date.now() - startedAt} ms to give up`)
    const reputation = new FsDatastore(join(network.home, 'reputation'))
    await reputation.open()
    const record = decodeCbor(await reputation.get(new Key(`/wasmesh/reputation/${liar}`)), 'record') as PeerRecord
    await reputation.close()
    assert.ok(record.failures >= 1, `the worker was not marked: ${JSON.stringify(record)}`)

    const honest = await network.startWorker('honest')
    const served = await job('now with an honest worker')
    assert.equal(served.code, 0, served.explained)
    assert.equal(served.json.worker, honest.peerId)
  })

  it('100,000 tiny malformed frames: the worker serves jobs during and after, and its memory comes back', async (t: TestContext) => {
    network = await ProcessNetwork.start({ label: 'hostile' })
    const worker = await network.startWorker('target', { slots: 2 })
    const address = (await worker.process.waitForLine(/^listening \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)).slice('listening '.length)
    assert.equal((await job('warm up')).code, 0)
    const baseline = await rssMiB(worker.process.pid)
    const flood = network.spawnScript(HOSTILE, ['frames', '--bootstrap', network.bootstrapAddr, '--target', address, '--frames', '100000'])
    const during = await job('during the flood')
    assert.equal(during.code, 0, during.explained)
    await flood.waitForLine(/^frames sent/, 240_000)
    const after = await job('after the flood')
    assert.equal(after.code, 0, after.explained)
    assert.equal(worker.process.exit, undefined, 'the worker died')
    const settled = await eventually(async () => await rssMiB(worker.process.pid) <= baseline * 1.2, 30_000)
    const rss = await rssMiB(worker.process.pid)
    t.diagnostic(`worker RSS ${baseline.toFixed(0)} MiB before, ${rss.toFixed(0)} MiB after the flood; jobs during ${Math.round(during.json.durationMs ?? 0)} ms, after ${Math.round(after.json.durationMs ?? 0)} ms`)
    assert.ok(settled, `worker RSS grew from ${baseline.toFixed(0)} to ${rss.toFixed(0)} MiB`)
  })

  it('2,000 fake identities flooding adverts: a new requester runs a job within 10 s, and the honest worker\'s advert interval is unchanged', async (t: TestContext) => {
    network = await ProcessNetwork.start({ label: 'hostile' })
    const honest = await network.startWorker('honest')
    const intervalOf = async (): Promise<number | undefined> => {
      const status = await network.run(['status', '--json', '--wait', '2000'])
      return (JSON.parse(status.stdout) as { peers: Array<{ peerId: string, intervalMs: number }> }).peers.find(p => p.peerId === honest.peerId)?.intervalMs
    }
    const before = await intervalOf()
    assert.ok(before != null, 'the honest worker did not advertise')
    const flood = network.spawnScript(HOSTILE, ['adverts', '--bootstrap', network.bootstrapAddr, '--count', '2000'])
    await flood.waitForLine(/^hostile ready/, 240_000)
    const startedAt = Date.now()
    const { code, json, explained } = await job('through the flood')
    assert.equal(code, 0, explained)
    assert.equal(json.worker, honest.peerId)
    assert.ok((json.durationMs ?? Infinity) < 10_000, `the job took ${json.durationMs} ms`)
    assert.equal(await intervalOf(), before, 'the flood stretched the honest worker\'s advert interval')
    assert.equal(network.bootstrap.exit, undefined, 'the bootstrap node died')
    t.diagnostic(`job through a 2,000-identity advert flood: ${Math.round(json.durationMs ?? 0)} ms (${Date.now() - startedAt} ms with the CLI's start); advert interval ${before} ms before and after`)
  })

  // The 1 GiB job's memory and the outputs' blocks come back in full; part of the Node heap that serving 384 MiB of
  // outputs took stays after full collections (cause not found yet): the worker settles at 332–337 MiB in every run
  // seen, while the idle baseline it is compared with varies from 193 to 219 MiB with collection timing, hence an
  // allowance of 160 MiB. One 128 MiB output kept for good would still overshoot it.
  it('after a 1 GiB job and three 128 MiB outputs, the worker\'s disk comes back within a minute, and its memory to within 160 MiB', async (t: TestContext) => {
    network = await ProcessNetwork.start({ label: 'hostile' })
    const worker: TestWorker = await network.startWorker('big', { slots: 1 })
    assert.equal((await job('warm up')).code, 0)
    const blocks = join(network.home, 'big', 'blocks')
    const baseline = { rss: await rssMiB(worker.process.pid), disk: await diskBytes(blocks) }
    const big = await network.run(['run', wasmPath('big-memory'), '--memory', '1024', '--json'])
    assert.equal(big.code, 0, explain(big))
    // three distinct jobs (their inputs differ), each writing its own 128 MiB output, fetched by CID
    const { dir } = await writeInputs(network, 3)
    const outputs = await batchFinished(startBatch(network, 'big-output', dir, join(network.home, 'out'), ['--max-output', String(256 * 1024 * 1024)]))
    assert.equal(outputs.code, 0, JSON.stringify(outputs.summary.failures))
    for (const file of await readdir(join(network.home, 'out'))) {
      if (!file.startsWith('.')) {
        assert.equal((await stat(join(network.home, 'out', file))).size, 128 * 1024 * 1024)
      }
    }
    const peak = { rss: await rssMiB(worker.process.pid), disk: await diskBytes(blocks) }
    const back = await eventually(async () => await rssMiB(worker.process.pid) <= baseline.rss + 160 && await diskBytes(blocks) <= baseline.disk + 64 * 1024, 60_000)
    const after = { rss: await rssMiB(worker.process.pid), disk: await diskBytes(blocks) }
    t.diagnostic(`worker RSS ${baseline.rss.toFixed(0)} → ${peak.rss.toFixed(0)} → ${after.rss.toFixed(0)} MiB; blocks ${(baseline.disk / 2 ** 20).toFixed(1)} → ${(peak.disk / 2 ** 20).toFixed(1)} → ${(after.disk / 2 ** 20).toFixed(1)} MiB`)
    assert.ok(back, `not back within a minute: RSS ${after.rss.toFixed(0)} MiB (baseline ${baseline.rss.toFixed(0)}), blocks ${after.disk} bytes (baseline ${baseline.disk})`)
  })
})
