import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import type { Abi, ExecuteRequest, ExecuteResult } from '../protocol/runtime/executor.ts'
import { WorkerPoolExecutor, spawnThread } from '../node/executor/worker-pool.ts'
import { nodeWasixRunner } from '../node/executor/wasix.ts'
import { PoolExecutor } from '../protocol/runtime/pool.ts'
import type { PoolInit, WorkerHost } from '../protocol/runtime/pool.ts'
import type { JobMessage } from '../protocol/runtime/worker.ts'
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

async function assertEcho (pool: PoolExecutor, text: string): Promise<ExecuteResult> {
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
    // Both slots' threads started first (they start on demand), so neither job below waits for one.
    await Promise.all([assertEcho(pool, 'warm one'), assertEcho(pool, 'warm two')])
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

interface Post {
  /** Which worker (in spawn order) the job went to. */
  worker: number
  key: string
  sentModule: boolean
  drop: string[]
  /** Jobs in the post: more than one when a batch went together. */
  count: number
}

/** A pool of real job threads that records what each job message carried. */
function spyingPool (slots: number, cacheSize: number, init: Partial<PoolInit> = {}): { pool: PoolExecutor, posts: Post[], workers: WorkerHost[] } {
  const posts: Post[] = []
  const workers: WorkerHost[] = []
  const spawn = spawnThread(128)
  let spawned = 0
  const pool = new PoolExecutor({
    ...init,
    slots,
    cacheSize,
    spawn: events => {
      const worker = spawned++
      const host = spawn(events)
      workers.push(host)
      return {
        post: message => {
          // a batch's first job carries what the worker is told about modules
          const job = Array.isArray(message) ? message[0] as JobMessage : message
          posts.push({ worker, key: job.key, sentModule: job.module !== undefined, drop: job.drop, count: Array.isArray(message) ? message.length : 1 })
          host.post(message)
        },
        terminate: host.terminate
      }
    }
  })
  return { pool, posts, workers }
}

/** What the last post carried, without the worker index and the count. */
function lastPost (posts: Post[]): Omit<Post, 'worker' | 'count'> {
  const { key, sentModule, drop } = posts.at(-1) ?? assert.fail('nothing was posted')
  return { key, sentModule, drop }
}

describe('PoolExecutor module reuse', () => {
  const echo = 'echo:wasi:64'
  const spin = 'spin:wasi:64'

  it('posts a module once per worker, and again to a worker respawned after a time limit', async () => {
    const { pool, posts } = spyingPool(1, 64)
    await pool.start()
    try {
      await assertEcho(pool, 'first')
      assert.deepEqual(lastPost(posts), { key: echo, sentModule: true, drop: [] })
      await assertEcho(pool, 'second')
      assert.deepEqual(lastPost(posts), { key: echo, sentModule: false, drop: [] })

      const result = await pool.execute(job('loop', { timeoutMs: 300 }))
      assert.equal(result.error?.name, 'TimeLimitError')
      // The fresh worker holds nothing: the cached module is sent again.
      const echoed = await assertEcho(pool, 'after the time limit')
      assert.equal(echoed.stats.moduleCached, true)
      assert.deepEqual(lastPost(posts), { key: echo, sentModule: true, drop: [] })
      assert.equal(posts.at(-1)?.worker, 1)
    } finally {
      await pool.stop()
    }
  })

  it('posts the module again after an abort respawned the worker', async () => {
    const { pool, posts } = spyingPool(1, 64)
    await pool.start()
    try {
      await assertEcho(pool, 'before')
      const controller = new AbortController()
      const running = pool.execute(job('spin', { input: '3000', signal: controller.signal }))
      setTimeout(() => { controller.abort(new Error('caller gave up')) }, 100)
      await assert.rejects(running, { message: 'caller gave up' })
      await assertEcho(pool, 'after')
      assert.deepEqual(lastPost(posts), { key: echo, sentModule: true, drop: [] })
    } finally {
      await pool.stop()
    }
  })

  it('reports a worker that died mid-job and sends its replacement the module', async () => {
    const { pool, posts, workers } = spyingPool(1, 64)
    await pool.start()
    try {
      await assertEcho(pool, 'before')
      const running = pool.execute(job('spin', { input: '3000' }))
      while (posts.length < 2) {
        await new Promise(resolve => setTimeout(resolve, 5))
      }
      // Behind the pool's back, as a crash would.
      await workers[0]?.terminate()
      const result = await running
      assert.equal(result.error?.name, 'ExecutorError')
      assert.match(result.error.message, /worker died/)
      await assertEcho(pool, 'after')
      assert.deepEqual(lastPost(posts), { key: echo, sentModule: true, drop: [] })
      assert.equal(posts.at(-1)?.worker, 1)
    } finally {
      await pool.stop()
    }
  })

  it('replaces a worker that was not sent a module it needs', async () => {
    const spawn = spawnThread(128)
    let posts = 0
    const pool = new PoolExecutor({
      slots: 1,
      spawn: events => {
        const host = spawn(events)
        return {
          // Loses the module of the very first job, as a wrong record of the worker would.
          post: message => {
            const { module, ...job } = Array.isArray(message) ? message[0] as JobMessage : message
            host.post(posts++ === 0 ? job : { ...job, module })
          },
          terminate: host.terminate
        }
      }
    })
    await pool.start()
    try {
      const result = await pool.execute(job('echo', { input: 'lost' }))
      assert.equal(result.error?.name, 'ExecutorError')
      assert.match(result.error.message, /not sent module echo:wasi:64/)
      await assertEcho(pool, 'found')
    } finally {
      await pool.stop()
    }
  })

  it('keeps each worker within the cache size', async () => {
    const { pool, posts } = spyingPool(1, 1)
    await pool.start()
    try {
      await assertEcho(pool, 'one')
      assert.equal((await pool.execute(job('spin', { input: '1' }))).exitCode, 0)
      assert.deepEqual(lastPost(posts), { key: spin, sentModule: true, drop: [echo] })
      // Evicted from both the cache and the worker: compiled and sent again.
      const again = await assertEcho(pool, 'two')
      assert.equal(again.stats.moduleCached, false)
      assert.deepEqual(lastPost(posts), { key: echo, sentModule: true, drop: [spin] })
    } finally {
      await pool.stop()
    }
  })

  it('runs a worker\'s own copy of a module the cache has evicted', async () => {
    const { pool, posts } = spyingPool(2, 1)
    await pool.start()
    try {
      // One worker runs spin while the other runs echo; echo then evicts spin from the cache.
      const busy = pool.execute(job('spin', { input: '300' }))
      while (posts.length === 0) {
        await new Promise(resolve => setTimeout(resolve, 5))
      }
      await assertEcho(pool, 'other worker')
      assert.equal((await busy).exitCode, 0)
      assert.deepEqual(pool.cachedModules(), ['echo'])

      // Both workers get spin: the one that ran it before keeps its copy, the other is sent the new compile.
      const loads = { count: 0 }
      const results = await Promise.all([0, 1].map(async () => await pool.execute(job('spin', { input: '200', loads }))))
      for (const result of results) {
        assert.equal(result.exitCode, 0)
        assert.equal(decoder.decode(result.output), 'done\n')
        assert.equal(result.stats.moduleCached, false)
      }
      const spins = posts.slice(-2)
      assert.deepEqual(spins.map(post => post.key), [spin, spin])
      assert.notEqual(spins[0]?.worker, spins[1]?.worker)
      assert.deepEqual(spins.map(post => post.sentModule).sort(), [false, true])
    } finally {
      await pool.stop()
    }
  })
})

describe('PoolExecutor with idleMs', () => {
  /** A one-slot pool ending its worker after `idleMs`, recording each spawn, post and retirement in `events`. */
  function recordingPool (idleMs: number, extra: Partial<PoolInit> = {}): { pool: PoolExecutor, events: string[] } {
    const spawn = spawnThread(128)
    const events: string[] = []
    const pool = new PoolExecutor({
      ...extra,
      slots: 1,
      idleMs,
      onRetire: () => { events.push('retired') },
      spawn: workerEvents => {
        events.push('spawned')
        const host = spawn(workerEvents)
        return {
          post: job => {
            events.push((Array.isArray(job) ? job[0] : job)?.module !== undefined ? 'posted with module' : 'posted')
            host.post(job)
          },
          terminate: host.terminate
        }
      }
    })
    return { pool, events }
  }

  it('starts a worker on the first job, ends it when idle, and starts a new one for the next job', async () => {
    const { pool, events } = recordingPool(200)
    await pool.start()
    try {
      assert.equal(events.length, 0, 'no worker before the first job')
      await assertEcho(pool, 'first')
      await assertEcho(pool, 'second')
      const deadline = Date.now() + 30_000
      while (!events.includes('retired') && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 50))
      }
      // The module stays compiled here; the new worker is sent it again.
      const again = await assertEcho(pool, 'after the idle worker ended')
      assert.equal(again.stats.moduleCached, true)
      assert.deepEqual(events, ['spawned', 'posted with module', 'posted', 'retired', 'spawned', 'posted with module'])
    } finally {
      await pool.stop()
    }
  })

  it('expectJob() starts the worker a job will take before the job comes, and a prepared worker no job reaches ends when idle', async () => {
    const { pool, events } = recordingPool(300)
    await pool.start()
    try {
      pool.expectJob('echo')
      assert.deepEqual(events, ['spawned'], 'expectJob() started no worker')
      pool.expectJob('echo')
      assert.deepEqual(events, ['spawned'], 'a second expectJob() started another worker for the same slot')
      await assertEcho(pool, 'prepared')
      assert.deepEqual(events, ['spawned', 'posted with module'], 'the job did not take the prepared worker')

      const deadline = Date.now() + 30_000
      while (!events.includes('retired') && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 50))
      }
      events.length = 0
      pool.expectJob('echo')
      while (!events.includes('retired') && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 50))
      }
      assert.deepEqual(events, ['spawned', 'retired'], 'a prepared worker that got no job did not end')
    } finally {
      await pool.stop()
    }
  })

  it('expectJob() starts no worker for a WASIX module, which @wasmer/sdk runs in workers of its own', async () => {
    const { pool, events } = recordingPool(300, { wasix: nodeWasixRunner() })
    await pool.start()
    try {
      const result = await pool.execute(job('wasix-echo', { input: 'hello' }))
      assert.equal(decoder.decode(result.output), 'wasix: hello')
      assert.deepEqual(events, [], 'the WASIX job took a pool worker')
      pool.expectJob('wasix-echo')
      assert.deepEqual(events, [], 'expectJob() started a worker no WASIX job takes')
      pool.expectJob('echo')
      assert.deepEqual(events, ['spawned'], 'expectJob() started no worker for a module the pool runs')
    } finally {
      await pool.stop()
    }
  })

  it('counts a job\'s time limit from when its worker is ready, not from the worker\'s start', async () => {
    const spawn = spawnThread(128)
    const startMs = 600
    const pool = new PoolExecutor({
      slots: 1,
      idleMs: 60_000,
      // A worker that takes startMs to start: what reaches it before then waits as long.
      spawn: events => {
        const started = new Promise(resolve => setTimeout(resolve, startMs))
        const host = spawn({
          message: data => { void started.then(() => { events.message(data) }) },
          died: events.died
        })
        return {
          post: job => { void started.then(() => { host.post(job) }) },
          terminate: host.terminate
        }
      }
    })
    await pool.start()
    try {
      const result = await pool.execute(job('echo', { input: 'slow start', timeoutMs: startMs / 3 }))
      assert.equal(result.error, undefined)
      assert.equal(decoder.decode(result.output), 'SLOW START')
    } finally {
      await pool.stop()
    }
  })
})

describe('PoolExecutor batches', () => {
  // which modules count as tiny is measured; a loaded machine must not decide what these tests see
  const init = { threadBatchMaxExecMs: 1000 }

  it('sends tiny queued jobs of one module to a thread in one post, each with its own result and its own limits', async () => {
    const { pool, posts } = spyingPool(1, 64, init)
    await pool.start()
    try {
      // measured first: only modules known to be tiny are batched
      for (const text of ['one', 'two', 'three', 'four']) {
        await assertEcho(pool, text)
      }
      // a job of another module holds the one thread while the batch queues (compiled first, so it is posted at once)
      const spinBytes = new Uint8Array(await readFile(wasmPath('spin')))
      await pool.execute(job('spin-busy', { bytes: spinBytes, input: '0' }))
      const busy = pool.execute(job('spin-busy', { bytes: spinBytes, input: '200' }))
      const inputs = ['a', 'b', 'x'.repeat(5000), 'c', 'd', 'e']
      const results = await Promise.all(inputs.map(async input => pool.execute(job('echo', { input }))))
      assert.equal((await busy).exitCode, 0)
      assert.deepEqual(posts.slice(-1).map(post => [post.key, post.count]), [['echo:wasi:64', inputs.length]], 'the queued echo jobs went in one post')
      for (const [i, result] of results.entries()) {
        if (i === 2) {
          assert.equal(result.error?.name, 'OutputLimitError', 'the output limit holds per job inside a batch')
        } else {
          assert.equal(result.error, undefined)
          assert.equal(decoder.decode(result.output), inputs[i]?.toUpperCase())
        }
      }
      assert.ok(results.every(result => (result.stats.waitMs ?? 0) > 0), 'each queued job says how long it waited for a thread')
    } finally {
      await pool.stop()
    }
  })

  it('runs each job of a batch that ran out of time again on its own, so only the slow one hits its limit', async () => {
    const { pool, posts } = spyingPool(1, 64, init)
    await pool.start()
    try {
      for (let i = 0; i < 4; i++) {
        assert.equal((await pool.execute(job('spin', { input: '0' }))).exitCode, 0)
      }
      // a job of another module holds the one thread while the batch queues (compiled first, so it is posted at once)
      const spinBytes = new Uint8Array(await readFile(wasmPath('spin')))
      await pool.execute(job('spin-busy', { bytes: spinBytes, input: '0' }))
      const busy = pool.execute(job('spin-busy', { bytes: spinBytes, input: '200' }))
      const before = posts.length
      const requests = [job('spin', { input: '0' }), job('spin', { input: '0' }), job('spin', { input: '60000', timeoutMs: 500 }), job('spin', { input: '0' })]
      const results = await Promise.all(requests.map(async request => pool.execute(request)))
      assert.equal((await busy).exitCode, 0)
      assert.deepEqual(posts.slice(before).map(post => post.count), [4, 1, 1, 1, 1], 'one batch, then each of its jobs alone')
      assert.deepEqual(results.map(result => result.error?.name ?? result.exitCode), [0, 0, 'TimeLimitError', 0])
    } finally {
      await pool.stop()
    }
  })
})
