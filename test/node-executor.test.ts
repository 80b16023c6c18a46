import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import type { Abi, ExecuteRequest, ExecuteResult } from '../protocol/executor.ts'
import { WorkerPoolExecutor } from '../node/executor/worker-pool.ts'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

interface JobOptions {
  abi?: Abi
  input?: string
  timeoutMs?: number
  signal?: AbortSignal
  /** Counts calls to module.load. */
  loads?: { count: number }
  /** Overrides the module bytes. */
  bytes?: Uint8Array
}

/** A request for a fixture; the fixture name doubles as the CID. */
function job (name: string, options: JobOptions = {}): ExecuteRequest {
  const request: ExecuteRequest = {
    module: {
      cid: name,
      load: async () => {
        if (options.loads !== undefined) {
          options.loads.count++
        }
        return options.bytes ?? await readFile(wasmPath(name))
      }
    },
    abi: options.abi ?? 'wasi',
    args: [],
    env: {},
    input: encoder.encode(options.input ?? ''),
    limits: { timeoutMs: options.timeoutMs ?? 10_000, memoryBytes: 4 * 1024 * 1024, outputBytes: 4096 }
  }
  if (options.signal !== undefined) {
    request.signal = options.signal
  }
  return request
}

async function assertEcho (pool: WorkerPoolExecutor, text: string): Promise<ExecuteResult> {
  const result = await pool.execute(job('echo', { input: text }))
  assert.equal(result.error, undefined)
  assert.equal(result.exitCode, 0)
  assert.equal(decoder.decode(result.output), text.toUpperCase())
  return result
}

before(async () => {
  await buildWasm()
})

describe('WorkerPoolExecutor', () => {
  const pool = new WorkerPoolExecutor({ slots: 2 })

  before(async () => {
    await pool.start()
  })

  after(async () => {
    await pool.stop()
  })

  it('runs echo', async () => {
    await assertEcho(pool, 'hello from a worker thread')
  })

  it('stops a job at its time limit and keeps working', async () => {
    const result = await pool.execute(job('loop', { timeoutMs: 300 }))
    assert.equal(result.exitCode, -1)
    assert.equal(result.error?.name, 'TimeLimitError')
    assert.match(result.error.message, /time limit of 300 ms/)
    await assertEcho(pool, 'still alive')
    await assertEcho(pool, 'both slots')
  })

  it('reports MemoryLimitError', async () => {
    const result = await pool.execute(job('memory-bomb'))
    assert.equal(result.error?.name, 'MemoryLimitError')
  })

  it('reports OutputLimitError', async () => {
    const result = await pool.execute(job('output-flood'))
    assert.equal(result.error?.name, 'OutputLimitError')
    assert.equal(result.output.length, 4096)
  })

  it('reports WasmTrapError', async () => {
    const result = await pool.execute(job('trap'))
    assert.equal(result.error?.name, 'WasmTrapError')
  })

  it('reports a non-zero exit without an error', async () => {
    const result = await pool.execute(job('exit-code'))
    assert.equal(result.error, undefined)
    assert.equal(result.exitCode, 3)
    assert.equal(decoder.decode(result.output), 'bye\n')
  })

  it('reports ForbiddenImportError naming the import', async () => {
    const result = await pool.execute(job('forbidden-import'))
    assert.equal(result.exitCode, -1)
    assert.equal(result.error?.name, 'ForbiddenImportError')
    assert.match(result.error.message, /"env"\."evil"/)
  })

  it('reports InvalidModuleError for bytes that are not wasm', async () => {
    const result = await pool.execute(job('not-wasm', { bytes: encoder.encode('<html></html>') }))
    assert.equal(result.error?.name, 'InvalidModuleError')
  })

  it('runs the direct ABI', async () => {
    const result = await pool.execute(job('direct-reverse', { abi: 'direct', input: 'drawer' }))
    assert.equal(decoder.decode(result.output), 'reward')
  })

  it('compiles a module once and then serves it from the cache', async () => {
    const loads = { count: 0 }
    const first = await pool.execute(job('spin', { input: '1', loads }))
    const second = await pool.execute(job('spin', { input: '1', loads }))
    assert.equal(first.stats.moduleCached, false)
    assert.equal(second.stats.moduleCached, true)
    assert.equal(second.stats.compileMs, 0)
    assert.equal(loads.count, 1)
    assert.equal(pool.cachedModules()[0], 'spin')
  })

  it('rejects with the abort reason and keeps working', async () => {
    const controller = new AbortController()
    const running = pool.execute(job('spin', { input: '3000', signal: controller.signal }))
    setTimeout(() => { controller.abort(new Error('caller gave up')) }, 100)
    await assert.rejects(running, { message: 'caller gave up' })
    await assertEcho(pool, 'after abort')
  })

  it('runs two jobs at once on two slots', async () => {
    // The loop can only end at its time limit, so echo finishing first means both ran together.
    let loopSettled = false
    const loop = pool.execute(job('loop', { timeoutMs: 2000 })).finally(() => { loopSettled = true })
    await assertEcho(pool, 'concurrently')
    assert.equal(loopSettled, false)
    assert.equal((await loop).error?.name, 'TimeLimitError')
  })
})

describe('WorkerPoolExecutor with one slot', () => {
  const pool = new WorkerPoolExecutor({ slots: 1 })

  before(async () => {
    await pool.start()
  })

  after(async () => {
    await pool.stop()
  })

  it('queues jobs beyond its slots in order', async () => {
    // Compile first: concurrent cache misses each compile and may finish in any order.
    await assertEcho(pool, 'warm up')
    const finished: string[] = []
    await Promise.all(['first', 'second', 'third'].map(async text => {
      await assertEcho(pool, text)
      finished.push(text)
    }))
    assert.deepEqual(finished, ['first', 'second', 'third'])
  })

  it('drops a queued job when its signal aborts', async () => {
    const controller = new AbortController()
    const busy = pool.execute(job('spin', { input: '200' }))
    const queued = pool.execute(job('echo', { input: 'never', signal: controller.signal }))
    controller.abort(new Error('not needed'))
    await assert.rejects(queued, { message: 'not needed' })
    assert.equal((await busy).exitCode, 0)
  })
})
