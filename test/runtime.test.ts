import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { before, describe, it } from 'node:test'
import type { Abi } from '../protocol/runtime/executor.ts'
import { compileModule } from '../protocol/runtime/compile.ts'
import { PAGE_BYTES, prepareModule } from '../protocol/runtime/prepare.ts'
import { runModule } from '../protocol/runtime/run.ts'
import type { RunOutcome } from '../protocol/runtime/run.ts'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'

const LIMITS = { memoryBytes: 4 * 1024 * 1024, outputBytes: 1024 }
const encoder = new TextEncoder()
const decoder = new TextDecoder()

async function fixture (name: string): Promise<Uint8Array<ArrayBuffer>> {
  return await readFile(wasmPath(name))
}

async function run (name: string, options: { abi?: Abi, input?: string, argv?: string[], env?: Record<string, string>, outputBytes?: number } = {}): Promise<RunOutcome> {
  const abi = options.abi ?? 'wasi'
  const module = await compileModule(await fixture(name), abi, LIMITS)
  return runModule(module, {
    abi,
    argv: options.argv ?? [name],
    env: options.env ?? {},
    input: encoder.encode(options.input ?? ''),
    limits: { ...LIMITS, outputBytes: options.outputBytes ?? LIMITS.outputBytes }
  })
}

/** A module with one memory, exported as "memory", and nothing else. */
function memoryModule (flags: number, initial: number, maximum?: number): Uint8Array {
  const limits = maximum === undefined ? [flags, initial] : [flags, initial, maximum]
  const memory = [5, limits.length + 1, 1, ...limits]
  const exports = [7, 10, 1, 6, ...encoder.encode('memory'), 2, 0]
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...memory, ...exports])
}

async function exportedMemory (bytes: Uint8Array, memoryBytes: number): Promise<WebAssembly.Memory> {
  const module = await WebAssembly.compile(prepareModule(bytes, 'direct', { memoryBytes }))
  return new WebAssembly.Instance(module).exports.memory as WebAssembly.Memory
}

before(async () => {
  await buildWasm()
})

describe('prepareModule', () => {
  it('rejects bytes that are not WebAssembly', () => {
    assert.throws(() => prepareModule(encoder.encode('#!/bin/sh\necho hi\n'), 'wasi', LIMITS), {
      name: 'InvalidModuleError',
      message: /bad magic bytes/
    })
  })

  it('rejects an import outside the ABI and names it', async () => {
    assert.throws(() => prepareModule(new Uint8Array(0), 'wasi', LIMITS), { name: 'InvalidModuleError' })
    const bytes = await fixture('forbidden-import')
    assert.throws(() => prepareModule(bytes, 'wasi', LIMITS), {
      name: 'ForbiddenImportError',
      message: /"env"\."evil" \(function\), which the wasi ABI/
    })
  })

  it('rejects WASI imports under the direct ABI', async () => {
    const bytes = await fixture('echo')
    assert.throws(() => prepareModule(bytes, 'direct', LIMITS), {
      name: 'ForbiddenImportError',
      message: /"wasi_snapshot_preview1"\."fd_read" \(function\), which the direct ABI/
    })
  })

  it('caps a memory without a maximum at the limit', async () => {
    const memory = await exportedMemory(memoryModule(0, 1), 2 * PAGE_BYTES)
    assert.equal(memory.grow(1), 1)
    assert.throws(() => memory.grow(1), RangeError)
  })

  it('keeps a declared maximum below the limit', async () => {
    const memory = await exportedMemory(memoryModule(1, 1, 2), 8 * PAGE_BYTES)
    assert.equal(memory.grow(1), 1)
    assert.throws(() => memory.grow(1), RangeError)
  })

  it('lowers a declared maximum above the limit', async () => {
    const memory = await exportedMemory(memoryModule(1, 1, 100), 3 * PAGE_BYTES)
    assert.equal(memory.grow(2), 1)
    assert.throws(() => memory.grow(1), RangeError)
  })

  it('rejects initial memory above the limit', () => {
    assert.throws(() => prepareModule(memoryModule(0, 5), 'direct', { memoryBytes: 4 * PAGE_BYTES }), {
      name: 'MemoryLimitError',
      message: /more than the job's limit of 0\.25 MiB/
    })
  })

  it('rejects 64-bit memory', () => {
    assert.throws(() => prepareModule(memoryModule(4, 1), 'direct', LIMITS), { name: 'InvalidModuleError', message: /memory64/ })
  })
})

describe('compileModule', () => {
  it('reports an engine compile error as InvalidModuleError', async () => {
    const bytes = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 3, 0xff, 0xff, 0xff])
    await assert.rejects(compileModule(bytes, 'wasi', LIMITS), { name: 'InvalidModuleError', message: /did not compile/ })
  })

  it('names a missing export the ABI requires', async () => {
    await assert.rejects(compileModule(await fixture('direct-reverse'), 'wasi', LIMITS), {
      name: 'InvalidModuleError',
      message: /"_start" \(function\), which the wasi ABI requires/
    })
  })
})

describe('runModule', () => {
  it('echo: stdin to stdout, uppercased, exit 0', async () => {
    const outcome = await run('echo', { input: 'hello, wasmesh!' })
    assert.equal(outcome.error, undefined)
    assert.equal(outcome.exitCode, 0)
    assert.equal(decoder.decode(outcome.output), 'HELLO, WASMESH!')
  })

  it('args-env: passes argv and the environment sorted by key', async () => {
    const outcome = await run('args-env', { argv: ['bafy', 'one', 'two words'], env: { ZED: 'last', ALPHA: 'first' } })
    assert.equal(outcome.exitCode, 0)
    assert.equal(decoder.decode(outcome.output), 'bafy\none\ntwo words\nALPHA=first\nZED=last\n')
  })

  it('spin: finishes and prints done', async () => {
    const outcome = await run('spin', { input: '1' })
    assert.equal(outcome.exitCode, 0)
    assert.equal(decoder.decode(outcome.output), 'done\n')
  })

  it('exit-code: keeps the output and reports the status', async () => {
    const outcome = await run('exit-code')
    assert.equal(outcome.error, undefined)
    assert.equal(outcome.exitCode, 3)
    assert.equal(decoder.decode(outcome.output), 'bye\n')
  })

  it('trap: WasmTrapError', async () => {
    const outcome = await run('trap')
    assert.equal(outcome.exitCode, -1)
    assert.equal(outcome.error?.name, 'WasmTrapError')
    assert.match(outcome.error.message, /^the module trapped: /)
  })

  it('memory-bomb: MemoryLimitError', async () => {
    const outcome = await run('memory-bomb')
    assert.equal(outcome.exitCode, -1)
    assert.equal(outcome.error?.name, 'MemoryLimitError')
    assert.match(outcome.error.message, /more than 4 MiB/)
  })

  it('output-flood: OutputLimitError, keeping output up to the limit', async () => {
    const outcome = await run('output-flood', { outputBytes: 100 })
    assert.equal(outcome.exitCode, -1)
    assert.equal(outcome.error?.name, 'OutputLimitError')
    assert.equal(outcome.output.length, 100)
  })

  it('refuses a module that skipped compileModule and imports outside the ABI', async () => {
    const module = await WebAssembly.compile(await fixture('forbidden-import'))
    const outcome = runModule(module, { abi: 'wasi', argv: [], env: {}, input: new Uint8Array(0), limits: LIMITS })
    assert.equal(outcome.error?.name, 'ForbiddenImportError')
  })

  it('direct ABI: returns the input reversed', async () => {
    const outcome = await run('direct-reverse', { abi: 'direct', input: 'stressed' })
    assert.equal(outcome.error, undefined)
    assert.equal(outcome.exitCode, 0)
    assert.equal(decoder.decode(outcome.output), 'desserts')
  })

  it('direct ABI: output over the limit is OutputLimitError', async () => {
    const outcome = await run('direct-reverse', { abi: 'direct', input: 'stressed', outputBytes: 4 })
    assert.equal(outcome.error?.name, 'OutputLimitError')
  })
})
