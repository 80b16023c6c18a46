/**
 * The conformance cases and the one table of expected outcomes that both the
 * Node executor (test/conformance.test.ts) and the browser executor
 * (test/e2e/conformance.spec.ts) must reproduce exactly. Order matters: the
 * hostile cases run before the last normal ones on the same executor, which
 * must still answer them correctly.
 */
import { readFile } from 'node:fs/promises'
import { chunkInput } from '../../apps/hashsearch/driver.ts'
import { MANDELBROT_DEFAULTS, tileInput, tiles } from '../../apps/mandelbrot/driver.ts'
import { batchInput, jobSeed } from '../../apps/montecarlo/driver.ts'
import { DEFAULT_LIMITS } from '../../protocol/constants.ts'
import type { Abi, ResourceLimits } from '../../protocol/runtime/executor.ts'
import { wasmPath } from '../../scripts/build-wasm.ts'
import type { Outcome, WireCase } from './execute.ts'

interface CaseSpec {
  name: string
  /** A module in build/wasm (name without .wasm), or raw bytes. */
  module: string | Uint8Array
  abi: Abi
  input: Uint8Array | string
  limits?: Partial<ResourceLimits>
}

const text = (value: string): Uint8Array => new TextEncoder().encode(value)
const prefix = text('wasmesh')
const deep = { ...MANDELBROT_DEFAULTS, width: 256, height: 256, tile: 64, maxIterations: 2000, centerRe: -0.743643887037151, centerIm: 0.13182590420533, span: 0.0005 }
const edge = { ...MANDELBROT_DEFAULTS, width: 101, height: 83, tile: 64 }
const MIB = 1024 * 1024

export const CASES: readonly CaseSpec[] = [
  { name: 'echo', module: 'echo', abi: 'wasi', input: 'hello, conformance' },
  { name: 'echo-empty', module: 'echo', abi: 'wasi', input: '' },
  { name: 'direct-reverse', module: 'direct-reverse', abi: 'direct', input: 'abc123' },
  { name: 'mandelbrot-overview-tile', module: 'mandelbrot', abi: 'direct', input: tileInput(MANDELBROT_DEFAULTS, tiles(MANDELBROT_DEFAULTS)[27]!) },
  { name: 'mandelbrot-deep-zoom-tile', module: 'mandelbrot', abi: 'direct', input: tileInput(deep, tiles(deep)[5]!) },
  { name: 'mandelbrot-edge-tile', module: 'mandelbrot', abi: 'direct', input: tileInput(edge, tiles(edge)[3]!) },
  { name: 'hashsearch-8-bits', module: 'hashsearch', abi: 'direct', input: chunkInput(prefix, 8, 0, 5000) },
  { name: 'hashsearch-16-bits-high-nonces', module: 'hashsearch', abi: 'direct', input: chunkInput(prefix, 16, 2 ** 40, 200_000) },
  { name: 'hashsearch-every-nonce', module: 'hashsearch', abi: 'direct', input: chunkInput(new Uint8Array(64).fill(0x61), 0, 7, 3) },
  { name: 'montecarlo-seed-1', module: 'montecarlo', abi: 'wasi', input: batchInput(jobSeed(1, 0), 100_000) },
  { name: 'montecarlo-large-seed', module: 'montecarlo', abi: 'wasi', input: batchInput(jobSeed(2 ** 52, 9), 1_000_000) },
  { name: 'montecarlo-bad-input', module: 'montecarlo', abi: 'wasi', input: 'no numbers here' },
  { name: 'infinite-loop', module: 'loop', abi: 'wasi', input: '', limits: { timeoutMs: 500 } },
  { name: 'memory-bomb', module: 'memory-bomb', abi: 'wasi', input: '', limits: { memoryBytes: 8 * MIB } },
  { name: 'output-flood', module: 'output-flood', abi: 'wasi', input: '', limits: { outputBytes: 4096 } },
  { name: 'forbidden-import', module: 'forbidden-import', abi: 'wasi', input: '' },
  { name: 'trap', module: 'trap', abi: 'wasi', input: '' },
  { name: 'not-wasm', module: text('this is not a wasm module'), abi: 'wasi', input: '' },
  { name: 'direct-abi-on-wasi-module', module: 'echo', abi: 'direct', input: 'x' },
  { name: 'echo-after-hostile', module: 'echo', abi: 'wasi', input: 'still standing' },
  { name: 'mandelbrot-after-hostile', module: 'mandelbrot', abi: 'direct', input: tileInput(MANDELBROT_DEFAULTS, tiles(MANDELBROT_DEFAULTS)[27]!) }
]

const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

/** What every runtime must produce, case by case. */
export const EXPECTED: Readonly<Record<string, Omit<Outcome, 'name'>>> = {
  'echo': { exitCode: 0, error: null, outputSha256: '6c4751ecb1f5e1a34dba137206db0d06a05b5e23e499e886bc847093f6a7a355', outputBytes: 18 },
  'echo-empty': { exitCode: 0, error: null, outputSha256: EMPTY, outputBytes: 0 },
  'direct-reverse': { exitCode: 0, error: null, outputSha256: '6ffb1ba81f30df5649bfcf654503cf4fa0f14b48d2085bc620889cfe8f031ec1', outputBytes: 6 },
  'mandelbrot-overview-tile': { exitCode: 0, error: null, outputSha256: 'c507ba008656ba9beb2725d2dc090269994eaf1b8d171586d83dcb32474a0eff', outputBytes: 16384 },
  'mandelbrot-deep-zoom-tile': { exitCode: 0, error: null, outputSha256: '642e5ce275a2e8cd73f3adee32b17b3ff4d4f75ee8328fe3a7f585c03e185a9e', outputBytes: 16384 },
  'mandelbrot-edge-tile': { exitCode: 0, error: null, outputSha256: '5eedbd2a601c1bf3f5afebefcb9159cc3ab4bdd7fb2811261bbadac042808926', outputBytes: 2812 },
  'hashsearch-8-bits': { exitCode: 0, error: null, outputSha256: 'fbbb1f974e299fa947268b3b02498ba180d10d858e06b467d512dcc37d329740', outputBytes: 964 },
  'hashsearch-16-bits-high-nonces': { exitCode: 0, error: null, outputSha256: 'd231cbab520275b42a02004def65d998da3f55e1f93b9ba3e9a0e18ea1f7c4a2', outputBytes: 164 },
  'hashsearch-every-nonce': { exitCode: 0, error: null, outputSha256: '68034fdeded80846ec9722a815d6454169eed92c783d20fdb9aed7da2e2fad2d', outputBytes: 124 },
  'montecarlo-seed-1': { exitCode: 0, error: null, outputSha256: 'f2e7406b10ed72b7c26982cd933c9e071a62018620eb6cacef7527f5f2552e99', outputBytes: 13 },
  'montecarlo-large-seed': { exitCode: 0, error: null, outputSha256: 'd553e264238358b323010b78780f9119164c59f70dc819398f1ce921df9b612f', outputBytes: 15 },
  'montecarlo-bad-input': { exitCode: 2, error: null, outputSha256: EMPTY, outputBytes: 0 },
  'infinite-loop': { exitCode: -1, error: 'TimeLimitError', outputSha256: EMPTY, outputBytes: 0 },
  'memory-bomb': { exitCode: -1, error: 'MemoryLimitError', outputSha256: EMPTY, outputBytes: 0 },
  'output-flood': { exitCode: -1, error: 'OutputLimitError', outputSha256: '01ffad9485a6c21936d451ed227cede421d1283848e09872081aa78a08ed2a1c', outputBytes: 4096 },
  'forbidden-import': { exitCode: -1, error: 'ForbiddenImportError', outputSha256: EMPTY, outputBytes: 0 },
  'trap': { exitCode: -1, error: 'WasmTrapError', outputSha256: EMPTY, outputBytes: 0 },
  'not-wasm': { exitCode: -1, error: 'InvalidModuleError', outputSha256: EMPTY, outputBytes: 0 },
  'direct-abi-on-wasi-module': { exitCode: -1, error: 'ForbiddenImportError', outputSha256: EMPTY, outputBytes: 0 },
  'echo-after-hostile': { exitCode: 0, error: null, outputSha256: '739701ccc16372d03158acfe9b25fd06034fc4e78e085429f9b2575050174386', outputBytes: 14 },
  'mandelbrot-after-hostile': { exitCode: 0, error: null, outputSha256: 'c507ba008656ba9beb2725d2dc090269994eaf1b8d171586d83dcb32474a0eff', outputBytes: 16384 }
}

/** Limits for the conformance runs: the defaults, with a shorter time limit so a hang fails fast. */
const LIMITS: ResourceLimits = { ...DEFAULT_LIMITS, timeoutMs: 20_000 }

/** The cases as plain data, modules read from build/wasm (run `npm run build:wasm` first). */
export async function loadCases (): Promise<WireCase[]> {
  return Promise.all(CASES.map(async c => {
    const module = typeof c.module === 'string' ? new Uint8Array(await readFile(wasmPath(c.module))) : c.module
    return {
      name: c.name,
      cid: typeof c.module === 'string' ? c.module : c.name,
      module: Array.from(module),
      abi: c.abi,
      input: Array.from(typeof c.input === 'string' ? text(c.input) : c.input),
      limits: { ...LIMITS, ...c.limits }
    }
  }))
}

/** The expected outcomes in case order, for a deepEqual against a runtime's. */
export function expectedOutcomes (): Outcome[] {
  return CASES.map(c => {
    const expected = EXPECTED[c.name]
    if (expected === undefined) {
      throw new Error(`no expected outcome for case ${c.name}`)
    }
    return { name: c.name, ...expected }
  })
}
