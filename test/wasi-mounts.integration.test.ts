import assert from 'node:assert/strict'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'
import { explain, runCli, ProcessNetwork } from './helpers/processes.ts'

const MOUNTS_PROGRAM = fileURLToPath(new URL('fixtures/c/mounts.wasm', import.meta.url))

/**
 * Mounts end to end, every node a separate OS process driven through the
 * CLI: a C program reads a mounted folder and writes to /out; the output
 * tree comes back by the CID in the signed receipt and is written out.
 */
describe('wasmesh run --mount across processes', () => {
  let network: ProcessNetwork
  let data: string

  before(async () => {
    await buildWasm()
    network = await ProcessNetwork.start()
    await Promise.all([network.startWorker('worker-a'), network.startWorker('worker-b')])
    data = join(network.home, 'data')
    await mkdir(data, { recursive: true })
    await writeFile(join(data, 'in.txt'), 'mounted input\n')
    await writeFile(join(data, 'other.txt'), 'x')
  })

  after(async () => {
    await network?.stop()
  })

  it('runs a C program over a mounted folder and writes /out to --out-dir, verified by two workers', async () => {
    const outDir = join(network.home, 'results')
    const result = await network.run(['run', MOUNTS_PROGRAM, '--mount', `/data=${data}`, '--mount', '/out', '--out-dir', outDir, '--redundancy', '2', '--json'])
    assert.equal(result.code, 0, explain(result))
    const json = JSON.parse(result.stdout)
    assert.match(json.output, /\/data has in\.txt\n\/data has other\.txt\n/)
    assert.match(json.output, /writing to \/data: Read-only file system/)
    assert.equal(json.receipts, 2, 'both workers signed the same output tree')
    assert.equal(json.mounts.length, 1)
    assert.equal(json.mounts[0].path, '/out')
    assert.deepEqual(json.receipt.mounts, json.mounts, 'the CID printed is the one the worker signed')
    assert.equal(await readFile(join(outDir, 'out', 'out.txt'), 'utf8'), 'MOUNTED INPUT\n')
    assert.deepEqual((await readdir(join(outDir, 'out'))).sort(), ['logs', 'out.txt'])

    const receiptFile = join(network.home, 'mount-receipt.json')
    await writeFile(receiptFile, result.stdout)
    const verified = await runCli(['verify', receiptFile, '--out-dir', outDir], network.env)
    assert.equal(verified.code, 0, explain(verified))
    assert.match(verified.stdout, /\/out match the signed trees/)
    await writeFile(join(outDir, 'out', 'out.txt'), 'EDITED\n')
    const edited = await runCli(['verify', receiptFile, '--out-dir', outDir], network.env)
    assert.equal(edited.code, 1, explain(edited))
    assert.match(edited.stderr, /invalid receipt: the files in .*out .* are not the final tree of \/out/)
  })

  it('mounts a tree by the CID a previous job signed, writable and seeded, and the job CID covers the mount', async () => {
    const first = JSON.parse((await network.run(['run', MOUNTS_PROGRAM, '--mount', `/data=${data}`, '--mount', '/out', '--json'])).stdout)
    const outCid: string = first.mounts[0].cid
    const failedOut = join(network.home, 'failed-results')
    const seeded = await network.run(['run', MOUNTS_PROGRAM, '--mount', `/data=${outCid}:rw`, '--mount', '/out', '--out-dir', failedOut, '--json'])
    const json = JSON.parse(seeded.stdout)
    // /data is now the previous /out: no in.txt, so the program fails to open it
    assert.equal(json.ok, false, explain(seeded))
    assert.match(json.output, /\/data has logs\n\/data has out\.txt\n/)
    assert.notEqual(json.receipt.job, first.job)
    assert.equal(json.error.name, 'NonZeroExitError')
    // (errno is what the second fopen, of /out/out.txt, left: musl probes it for a terminal, as on Linux)
    assert.match(json.stderr, /^fopen: /m, 'the job\'s stderr tail travels in --json')
    assert.ok(typeof json.receipt.signed === 'string' && json.error.hint.length > 0)
    // a failed job's writable mounts still come back, signed, and are written out
    assert.deepEqual(json.mounts.map((m: { path: string }) => m.path), ['/data', '/out'])
    assert.deepEqual(json.receipt.mounts, json.mounts)
    assert.deepEqual((await readdir(join(failedOut, 'data'))).sort(), ['logs', 'out.txt'])
  })

  it('prints the tail of the job\'s stderr beside the error name', async () => {
    const result = await network.run(['run', MOUNTS_PROGRAM])
    assert.equal(result.code, 1, explain(result))
    assert.match(result.stderr, /NonZeroExitError: .*\nthe job's stderr ended with:\n {2}opendir \/data: Capabilities insufficient/, 'the C library\'s perror text for an unmounted path')
  })

  it('refuses --out-dir without a writable mount', async () => {
    const result = await network.run(['run', wasmPath('echo'), '--mount', `/data=${data}`, '--out-dir', join(network.home, 'nowhere')])
    assert.equal(result.code, 2, explain(result))
  })
})
