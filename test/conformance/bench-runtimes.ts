/**
 * Measures, in Node, what docs/runtimes.md reports: the per-job overhead of
 * each ABI through WorkerPoolExecutor, cold and warm, and our WASI shim beside
 * @wasmer/sdk on the same module (build/wasm/echo.wasm with stdin).
 *
 *   npm run build:wasm
 *   npm i --prefix /tmp/wasmer-sdk @wasmer/sdk@0.16     # kept out of the project's dependencies
 *   WASMER_SDK=@wasmer/sdk/node node test/conformance/bench-runtimes.ts
 *
 * Without WASMER_SDK it measures our executor only.
 */
import { readFile } from 'node:fs/promises'
import { WorkerPoolExecutor } from '../../node/executor/worker-pool.ts'
import { DEFAULT_LIMITS } from '../../protocol/constants.ts'
import { buildWasm, wasmPath } from '../../scripts/build-wasm.ts'
import { loadCases } from './cases.ts'
import { measureOverhead, type OverheadStats, type WireCase } from './execute.ts'

const RUNS = 200
const WASMER_RUNS = 30
const STDIN = 'hello from wasmesh'

/** The slice of @wasmer/sdk 0.16 used here (see its README). */
interface WasmerSdk {
  Wasmer: new (options?: { cache?: string }) => {
    packages: { load: (bytes: Uint8Array) => Promise<unknown> }
    sandboxes: { create: (options: { packages: unknown[], network?: { mode: string } }) => Promise<WasmerSandbox> }
    close: () => Promise<void>
  }
}

interface WasmerSandbox {
  command: (pkg: unknown, args?: string[]) => { run: (options: { stdin?: string, timeoutMs?: number, check?: boolean }) => Promise<{ exitCode: number, text: () => string }> }
  close: () => Promise<void>
}

function summary (samples: number[]): OverheadStats {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number): number => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0) * 1000) / 1000
  return { runs: samples.length, medianMs: at(0.5), p95Ms: at(0.95) }
}

function line (label: string, stats: OverheadStats): void {
  console.log(`${label.padEnd(62)} median ${stats.medianMs.toFixed(3).padStart(8)} ms   p95 ${stats.p95Ms.toFixed(3).padStart(8)} ms   (${stats.runs} runs)`)
}

async function time (body: () => Promise<void>): Promise<number> {
  const started = performance.now()
  await body()
  return performance.now() - started
}

await buildWasm()
const cases = await loadCases()
const echoBytes = new Uint8Array(await readFile(wasmPath('echo')))
const echo: WireCase = { name: 'echo', cid: 'echo', module: Array.from(echoBytes), abi: 'wasi', input: Array.from(new TextEncoder().encode(STDIN)), limits: { ...DEFAULT_LIMITS } }

console.log(`node ${process.version}, ${RUNS} runs per figure; per job = ExecuteRequest in → ExecuteResult out`)
const started = performance.now()
const executor = new WorkerPoolExecutor({ slots: 1 })
await executor.start()
const startMs = performance.now() - started
const firstMs = await time(async () => { await executor.execute({ module: { cid: 'first', load: async () => echoBytes }, abi: 'wasi', args: [], env: {}, input: new TextEncoder().encode(STDIN), limits: { ...DEFAULT_LIMITS } }) })
console.log(`WorkerPoolExecutor start (1 worker thread): ${startMs.toFixed(1)} ms; first job after start: ${firstMs.toFixed(1)} ms`)
for (const name of ['echo-empty', 'direct-reverse']) {
  const c = cases.find(entry => entry.name === name) as WireCase
  const stats = await measureOverhead(executor, c, RUNS)
  line(`executor ${c.abi} ABI (${name}), cold (compile + send)`, stats.cold)
  line(`executor ${c.abi} ABI (${name}), warm`, stats.warm)
}
const shim = await measureOverhead(executor, echo, RUNS)
line('our WASI shim, echo.wasm + stdin, cold', shim.cold)
line('our WASI shim, echo.wasm + stdin, warm', shim.warm)
await executor.stop()

const sdkPath = process.env.WASMER_SDK
if (sdkPath !== undefined && sdkPath !== '') {
  const { Wasmer } = await import(sdkPath) as WasmerSdk
  const expected = STDIN.toUpperCase()
  const check = (output: { exitCode: number, text: () => string }): void => {
    if (output.exitCode !== 0 || output.text() !== expected) {
      throw new Error(`@wasmer/sdk gave exit ${output.exitCode}, ${JSON.stringify(output.text())}`)
    }
  }
  let wasmer: InstanceType<WasmerSdk['Wasmer']> | undefined
  const initMs = await time(async () => {
    wasmer = new Wasmer({ cache: 'memory' })
    const pkg = await wasmer.packages.load(echoBytes)
    const sandbox = await wasmer.sandboxes.create({ packages: [pkg], network: { mode: 'disabled' } })
    check(await sandbox.command(pkg).run({ stdin: STDIN, timeoutMs: 30_000 }))
    await sandbox.close()
  })
  const sdk = wasmer as InstanceType<WasmerSdk['Wasmer']>
  console.log(`@wasmer/sdk first job (new Wasmer, load, sandbox, run): ${initMs.toFixed(1)} ms`)
  const cold: number[] = []
  for (let i = 0; i < WASMER_RUNS; i++) {
    // A fresh package and sandbox per job, as isolation between jobs needs.
    cold.push(await time(async () => {
      const pkg = await sdk.packages.load(echoBytes)
      const sandbox = await sdk.sandboxes.create({ packages: [pkg], network: { mode: 'disabled' } })
      check(await sandbox.command(pkg).run({ stdin: STDIN, timeoutMs: 30_000 }))
      await sandbox.close()
    }))
  }
  line('@wasmer/sdk, echo.wasm + stdin, cold (load + sandbox + run)', summary(cold))
  const pkg = await sdk.packages.load(echoBytes)
  const sandbox = await sdk.sandboxes.create({ packages: [pkg], network: { mode: 'disabled' } })
  const warm: number[] = []
  for (let i = 0; i < WASMER_RUNS + 1; i++) {
    const ms = await time(async () => { check(await sandbox.command(pkg).run({ stdin: STDIN, timeoutMs: 30_000 })) })
    if (i > 0) {
      warm.push(ms)
    }
  }
  line('@wasmer/sdk, echo.wasm + stdin, warm (same sandbox)', summary(warm))
  await sandbox.close()
  await sdk.close()
}
