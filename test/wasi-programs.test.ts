/**
 * C programs (wasi-libc, test/fixtures/c/, prebuilt so clang is not needed)
 * through the Node executor: mounts in and out across the worker boundary,
 * the program name, deterministic sleep, and many small writes to stdout.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import { WorkerPoolExecutor } from '../node/executor/worker-pool.ts'
import type { ExecuteRequest, ExecuteResult, Mount, TreeDirectory, TreeFile } from '../protocol/runtime/executor.ts'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'
import { executeRequest } from './helpers/execute-request.ts'

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const fixture = async (name: string): Promise<Uint8Array> => new Uint8Array(await readFile(new URL(`./fixtures/c/${name}.wasm`, import.meta.url)))

function mounts (): Mount[] {
  return [
    { path: '/data', writable: false, tree: { type: 'directory', entries: { 'in.txt': { type: 'file', content: encoder.encode('hello\nfiles\n') }, 'b.txt': { type: 'file', content: encoder.encode('b') } } } },
    { path: '/out', writable: true, tree: { type: 'directory', entries: {} } }
  ]
}

function job (cid: string, bytes: Uint8Array, extra: Partial<ExecuteRequest> = {}): ExecuteRequest {
  return executeRequest(cid, bytes, { timeoutMs: 20_000, memoryBytes: 64 * 1024 * 1024, outputBytes: 16 * 1024 * 1024 }, extra)
}

describe('C programs through WorkerPoolExecutor', () => {
  const executor = new WorkerPoolExecutor({ slots: 1 })

  before(async () => {
    await buildWasm()
    await executor.start()
  })

  after(async () => {
    await executor.stop()
  })

  it('mounts: reads a read-only mount, writes a writable one, and gets its tree back', async () => {
    const bytes = await fixture('mounts')
    const run = async (): Promise<ExecuteResult> => executor.execute(job('mounts', bytes, { mounts: mounts() }))
    const started = performance.now()
    const result = await run()
    assert.ok(performance.now() - started < 2000, 'a two-second sleep of virtual time does not wait')
    assert.equal(result.error, undefined, decoder.decode(result.stderr))
    assert.equal(result.exitCode, 0)
    assert.equal(decoder.decode(result.output), [
      'argv[0] main.wasm, stdout is not a terminal',
      '/data has b.txt',
      '/data has in.txt',
      'writing to /data: Read-only file system',
      'renaming /data/in.txt to /out: Cross-device link',
      'slept 2000 ms of virtual time',
      ''
    ].join('\n'))
    assert.deepEqual(result.mounts?.map(mount => mount.path), ['/out'])
    const tree = result.mounts?.[0]?.tree as TreeDirectory
    assert.deepEqual(Object.keys(tree.entries).sort(), ['logs', 'out.txt'])
    assert.equal(decoder.decode((tree.entries['out.txt'] as TreeFile).content), 'HELLO\nFILES\n')
    assert.deepEqual(tree.entries.logs, { type: 'directory', entries: {} })
    // The same job again: the same bytes and the same tree.
    const again = await run()
    assert.deepEqual(again.output, result.output)
    assert.deepEqual(again.mounts, result.mounts)
  })

  it('argv[0] is the program name the request gives', async () => {
    const result = await executor.execute(job('mounts', await fixture('mounts'), { mounts: mounts(), programName: 'copy-upper' }))
    assert.match(decoder.decode(result.output), /^argv\[0\] copy-upper,/)
  })

  it('mounts over the filesystem limit fail the job with FilesystemLimitError', async () => {
    const result = await executor.execute(job('mounts', await fixture('mounts'), { mounts: mounts(), filesystemBytes: 8 }))
    assert.equal(result.exitCode, -1)
    assert.equal(result.error?.name, 'FilesystemLimitError')
    assert.equal(result.mounts, undefined)
  })

  it('a job stopped at its time limit returns no mounts', async () => {
    const result = await executor.execute(job('loop', new Uint8Array(await readFile(wasmPath('loop'))), { mounts: mounts(), limits: { timeoutMs: 300, memoryBytes: 4 * 1024 * 1024, outputBytes: 1024 } }))
    assert.equal(result.error?.name, 'TimeLimitError')
    assert.equal(result.mounts, undefined)
  })

  it('printf-flood: 200,000 printf lines come out whole and fast, stdout being fully buffered', async () => {
    const bytes = await fixture('printf-flood')
    await executor.execute(job('printf-flood', bytes))
    const result = await executor.execute(job('printf-flood', bytes))
    assert.equal(result.exitCode, 0)
    const lines = decoder.decode(result.output).split('\n')
    assert.equal(lines.length, 200_001)
    assert.equal(lines[199_999], 'line 199999 of the flood')
    console.log(`printf-flood: 200,000 lines (${result.output.length} bytes) in ${result.stats.execMs.toFixed(1)} ms`)
    assert.ok(result.stats.execMs < 5000)
  })
})
