import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import wabt from 'wabt'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'
import { WorkerPoolExecutor } from '../node/executor/worker-pool.ts'
import { verifyReceipt } from '../protocol/wire/receipt.ts'
import { createTestnet, type Testnet } from './helpers/testnet.ts'
import type { ExecuteRequest } from '../protocol/runtime/executor.ts'
import { executeRequest } from './helpers/execute-request.ts'

const decoder = new TextDecoder()

/** A WASIX module whose _start runs `body` (it imports wasix_32v1.proc_id, so only @wasmer/sdk can run it). */
async function wasixModule (body: string, memory = '1 2'): Promise<Uint8Array> {
  const toolkit = await wabt()
  const parsed = toolkit.parseWat('inline.wat', `(module
    (import "wasix_32v1" "proc_id" (func $proc_id (param i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") ${memory})
    (func (export "_start") ${body}))`)
  try {
    parsed.resolveNames()
    parsed.validate()
    return parsed.toBinary({}).buffer
  } finally {
    parsed.destroy()
  }
}

function job (cid: string, bytes: Uint8Array, extra: Partial<ExecuteRequest> = {}): ExecuteRequest {
  return executeRequest(cid, bytes, { timeoutMs: 10_000, memoryBytes: 16 * 1024 * 1024, outputBytes: 1024 * 1024 }, extra)
}

describe('WASIX modules through @wasmer/sdk, in the Node executor', () => {
  const executor = new WorkerPoolExecutor({ slots: 1 })
  before(async () => {
    await buildWasm()
    await executor.start()
  })
  after(async () => { await executor.stop() })

  it('runs a WASIX command: stdin in, stdout and stderr out', async () => {
    const bytes = await readFile(wasmPath('wasix-echo'))
    const result = await executor.execute(job('wasix-echo', bytes, { input: new TextEncoder().encode('hello wasix\n') }))
    assert.equal(result.error, undefined, JSON.stringify(result.error))
    assert.equal(result.exitCode, 0)
    assert.equal(decoder.decode(result.output), 'wasix: hello wasix\n')
    assert.equal(decoder.decode(result.stderr), 'wasix stderr line\n')
    const again = await executor.execute(job('wasix-echo', bytes, { input: new TextEncoder().encode('again') }))
    assert.equal(again.stats.moduleCached, true)
    assert.deepEqual(executor.cachedModules(), [], 'a WASIX module is not in the compiled-module cache the advert lists')
  })

  it('keeps the job\'s limits: time, memory (the declared maximum is capped), output', async () => {
    const loop = await executor.execute(job('wasix-loop', await wasixModule('(loop $l (br $l))'), { limits: { timeoutMs: 500, memoryBytes: 16 * 1024 * 1024, outputBytes: 1024 } }))
    assert.equal(loop.error?.name, 'TimeLimitError')
    // asks for 64 pages more: allowed by its own maximum (100 pages), refused by the 1 MiB (16 pages) limit
    const grow = await executor.execute(job('wasix-grow', await wasixModule('(if (i32.eq (memory.grow (i32.const 64)) (i32.const -1)) (then (call $exit (i32.const 7))))', '1 100'), { limits: { timeoutMs: 5000, memoryBytes: 1024 * 1024, outputBytes: 1024 } }))
    assert.equal(grow.exitCode, 7, JSON.stringify(grow.error))
    const flood = await executor.execute(job('wasix-echo', await readFile(wasmPath('wasix-echo')), { input: new Uint8Array(4096).fill(65), limits: { timeoutMs: 5000, memoryBytes: 16 * 1024 * 1024, outputBytes: 100 } }))
    assert.equal(flood.error?.name, 'OutputLimitError')
  })

  it('reports a trap as WasmTrapError, and refuses mounts with InvalidMountError', async () => {
    const trap = await executor.execute(job('wasix-trap', await wasixModule('unreachable')))
    assert.equal(trap.error?.name, 'WasmTrapError')
    assert.match(trap.error?.message ?? '', /unreachable/)
    const mounted = await executor.execute(job('wasix-echo', await readFile(wasmPath('wasix-echo')), { mounts: [{ path: '/out', tree: { type: 'directory', entries: {} }, writable: true }] }))
    assert.equal(mounted.error?.name, 'InvalidMountError')
  })
})

describe('a WASIX job on an in-process network', () => {
  let testnet: Testnet
  before(async () => { testnet = await createTestnet(1) })
  after(async () => { await testnet?.stop() })

  it('runs on a worker and comes back under a verified signed receipt', async () => {
    const requester = await testnet.requester()
    const result = await requester.run({ module: await readFile(wasmPath('wasix-echo')), input: 'over the mesh' })
    assert.equal(result.text(), 'wasix: over the mesh')
    const verified = await verifyReceipt(result.receipts[0]?.signed as never, { job: result.job, worker: testnet.workers[0]?.id as string })
    assert.equal(decoder.decode(verified.receipt.stderr), 'wasix stderr line\n')
  })
})
