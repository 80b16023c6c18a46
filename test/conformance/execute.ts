/**
 * Runs conformance cases on any Executor and reduces each result to what must
 * match across runtimes: exit code, error name and the output's SHA-256.
 * Isomorphic: the node:test file runs it on WorkerPoolExecutor, the test page
 * (./page) on WebWorkerExecutor inside Chromium.
 */
import type { Abi, Executor, ResourceLimits } from '../../protocol/runtime/executor.ts'

/** A case as it crosses into the page: plain data only. */
export interface WireCase {
  name: string
  /** The executor's cache key; cases that share a module share it. */
  cid: string
  module: number[]
  abi: Abi
  input: number[]
  limits: ResourceLimits
}

export interface Outcome {
  name: string
  exitCode: number
  /** The failure's error name, or null for a module that exited by itself. */
  error: string | null
  outputSha256: string
  outputBytes: number
}

export async function sha256Hex (bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array(bytes)))
  return Array.from(digest, b => b.toString(16).padStart(2, '0')).join('')
}

/** Runs the cases one after another on the same executor, so later cases see what earlier ones left behind. */
export async function runCases (executor: Executor, cases: readonly WireCase[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = []
  for (const c of cases) {
    const module = new Uint8Array(c.module)
    const result = await executor.execute({
      module: { cid: c.cid, load: async () => module },
      abi: c.abi,
      args: [],
      env: {},
      input: new Uint8Array(c.input),
      limits: c.limits
    })
    outcomes.push({ name: c.name, exitCode: result.exitCode, error: result.error?.name ?? null, outputSha256: await sha256Hex(result.output), outputBytes: result.output.length })
  }
  return outcomes
}

export interface OverheadStats {
  runs: number
  medianMs: number
  p95Ms: number
}

/**
 * Per-job time through `execute` for a job that does almost nothing: cold
 * runs give each job a fresh cache key, so the module is compiled and sent
 * to the worker every time; warm runs reuse one key.
 */
export async function measureOverhead (executor: Executor, c: WireCase, runs: number): Promise<{ cold: OverheadStats, warm: OverheadStats }> {
  const module = new Uint8Array(c.module)
  const input = new Uint8Array(c.input)
  const time = async (cid: string): Promise<number> => {
    const started = performance.now()
    const result = await executor.execute({ module: { cid, load: async () => module }, abi: c.abi, args: [], env: {}, input, limits: c.limits })
    if (result.exitCode !== 0) {
      throw new Error(`${c.name}: exit ${result.exitCode} ${result.error?.name ?? ''}`)
    }
    return performance.now() - started
  }
  const nonce = Math.random().toString(36).slice(2)
  const cold: number[] = []
  for (let i = 0; i < runs; i++) {
    cold.push(await time(`${c.cid}-cold-${nonce}-${i}`))
  }
  await time(`${c.cid}-warm-${nonce}`)
  const warm: number[] = []
  for (let i = 0; i < runs; i++) {
    warm.push(await time(`${c.cid}-warm-${nonce}`))
  }
  return { cold: stats(cold), warm: stats(warm) }
}

function stats (samples: number[]): OverheadStats {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number): number => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0) * 1000) / 1000
  return { runs: samples.length, medianMs: at(0.5), p95Ms: at(0.95) }
}
