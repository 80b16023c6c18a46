import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import { fromString } from 'uint8arrays/from-string'
import { decodeSigned, verifyStorageReceipt } from '../protocol/public.ts'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'
import { createPeer } from '../node/create-peer.ts'
import { eventually, explain, ProcessNetwork, type TestWorker } from './helpers/processes.ts'

const MiB = 1024 * 1024

interface HoldersJson { cid: string, holders: string[], receipts: Array<{ peerId: string, receipt: string }> }

/**
 * Storage across processes, through the CLI: five storage peers, a 20 MiB
 * file stored at three replicas by a `wasmesh store` that then exits, two of
 * the three holders killed, and the content still there for a new client and
 * back on three holders, repaired by the survivor alone; meanwhile a job
 * reads a stored input whose uploader left, and its output is stored too.
 * Then a holder process that deletes what it pinned (the `drop-stored` test
 * fault) is caught by its fellow holder's check and replaced.
 */
describe('storage across processes', () => {
  let network: ProcessNetwork
  let workers: TestWorker[]

  before(async () => {
    await buildWasm()
    network = await ProcessNetwork.start({ label: 'storage' })
    workers = await network.startWorkers(5, { args: ['--storage', '64MiB', '--storage-check', '1000'] })
  })

  after(async () => {
    await network?.stop()
  })

  it('keeps a 20 MiB file on 3 holders after its uploader left and 2 of them died', async () => {
    const file = join(network.home, 'twenty.bin')
    const bytes = randomBytes(20 * MiB)
    await writeFile(file, bytes)
    // a job input too, stored by another uploader at once
    const inputFile = join(network.home, 'input.txt')
    await writeFile(inputFile, 'stored input, read by a job after its uploader left')
    // and a folder, read back as a folder
    const folder = join(network.home, 'folder')
    await mkdir(join(folder, 'sub'), { recursive: true })
    await writeFile(join(folder, 'a.txt'), 'first')
    await writeFile(join(folder, 'sub', 'b.bin'), randomBytes(3000))
    const [stored, storedInput, storedFolder] = await Promise.all([
      network.run(['store', file, '--replicas', '3', '--json']),
      network.run(['store', inputFile, '--replicas', '3', '--json']),
      network.run(['store', folder, '--replicas', '3', '--json'])
    ])
    assert.equal(stored.code, 0, explain(stored))
    assert.equal(storedInput.code, 0, explain(storedInput))
    assert.equal(storedFolder.code, 0, explain(storedFolder))
    const inputCid = (JSON.parse(storedInput.stdout) as HoldersJson).cid
    const folderCid = (JSON.parse(storedFolder.stdout) as HoldersJson).cid
    const result = JSON.parse(stored.stdout) as HoldersJson & { size: number }
    const cid = CID.parse(result.cid)
    assert.equal(new Set(result.holders).size, 3, 'three distinct holders')
    const ids = new Set(workers.map(w => w.peerId))
    for (const { peerId, receipt } of result.receipts) {
      assert.ok(ids.has(peerId), `${peerId} is not one of the storage peers`)
      const verified = await verifyStorageReceipt(decodeSigned(fromString(receipt, 'base64'), 'receipt'), { cid, holder: peerId, now: Date.now() })
      assert.equal(verified.size, result.size)
    }

    // the uploader (the store command) has exited; now two of the three holders die
    const doomed = workers.filter(w => result.holders.includes(w.peerId)).slice(0, 2)
    for (const worker of doomed) {
      worker.process.kill('SIGKILL')
    }
    const killedAt = Date.now()
    const survivor = workers.find(w => result.holders.includes(w.peerId) && !doomed.includes(w)) as TestWorker
    // a new client reads it back while the survivor repairs the holder set on its own
    const out = join(network.home, 'back.bin')
    const folderBack = join(network.home, 'folder-back')
    const [got, gotFolder, repaired, job] = await Promise.all([
      network.run(['get', result.cid, '--out', out]),
      network.run(['get', folderCid, '--out', folderBack]),
      survivor.process.waitForLine(new RegExp(`^repaired ${result.cid}`), 60_000),
      // at least one of the input's three holders survived: the job runs without its uploader
      network.run(['run', wasmPath('echo'), '--input-cid', inputCid, '--store-output', '2', '--json'])
    ])
    assert.equal(job.code, 0, explain(job))
    const ran = JSON.parse(job.stdout) as { output: string, stored: { cid: string, holders: string[] } }
    assert.equal(ran.output, 'STORED INPUT, READ BY A JOB AFTER ITS UPLOADER LEFT')
    assert.equal(ran.stored.holders.length, 2, 'the output was not stored on 2 holders')
    assert.equal(got.code, 0, explain(got))
    assert.ok((await readFile(out)).equals(bytes), 'the bytes read back differ')
    assert.equal(gotFolder.code, 0, explain(gotFolder))
    assert.deepEqual((await readdir(folderBack, { recursive: true })).sort(), ['a.txt', 'sub', join('sub', 'b.bin')])
    assert.equal(await readFile(join(folderBack, 'a.txt'), 'utf8'), 'first')
    assert.ok((await readFile(join(folderBack, 'sub', 'b.bin'))).equals(await readFile(join(folder, 'sub', 'b.bin'))), 'a file in the folder read back differs')
    const toStdout = await network.run(['get', folderCid])
    assert.equal(toStdout.code, 2, explain(toStdout))
    assert.match(toStdout.stderr, /is a folder: give --out PATH/)
    assert.ok(Date.now() - killedAt < 60_000, `repaired only after ${Date.now() - killedAt} ms: ${repaired}`)
    let holders: string[] = []
    while (holders.length < 3) {
      assert.ok(Date.now() - killedAt < 60_000, `not back on 3 holders within 60 s of the kill: ${holders.join(', ')}`)
      const listed = await network.run(['holders', result.cid, '--json'])
      assert.equal(listed.code, 0, explain(listed))
      holders = (JSON.parse(listed.stdout) as HoldersJson).holders
    }
    for (const dead of doomed) {
      assert.ok(!holders.includes(dead.peerId), `${dead.peerId} was killed, yet is listed`)
    }
  })

  it('a holder process that deletes what it pinned is caught by the next check and replaced', async () => {
    const liar = await network.startWorker('liar', { args: ['--storage', '64MiB', '--storage-check', '1000'], env: { WASMESH_TEST_FAULT: 'drop-stored' } })
    const alive = workers.filter(w => w.process.child.exitCode == null && w.process.child.signalCode == null)
    const honest = alive[0] as TestWorker
    const client = await createPeer({ bootstrap: [network.bootstrapAddr] })
    try {
      const stored = await client.store(randomBytes(2 * MiB), { replicas: 2, on: [liar.peerId, honest.peerId] })
      assert.deepEqual(stored.holders.map(h => h.peerId).sort(), [liar.peerId, honest.peerId].sort())
      const cid = stored.cid.toString()
      // the honest holder's check finds the blocks gone, says so, and places a replica on another storage peer
      await honest.process.waitForLine(new RegExp(`^check failed: ${liar.peerId} for ${cid}`), 60_000, 'stderr')
      await honest.process.waitForLine(new RegExp(`^repaired ${cid}`), 60_000)
      // two honest copies again, and the liar, which still claims the content under its own receipt, is no longer listed: no other holder names it
      let holders: string[] = []
      assert.ok(await eventually(async () => {
        holders = (await client.holders(cid, { waitMs: 0 })).map(h => h.peerId)
        return holders.length >= 2 && !holders.includes(liar.peerId)
      }, 60_000), `the liar was not replaced, or is still listed: holders ${holders.join(', ')}`)
    } finally {
      await client.stop()
      await liar.process.stop()
    }
  })
})
