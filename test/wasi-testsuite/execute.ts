/**
 * Runs one program of the WASI conformance suite on any Executor and reduces
 * the result to what its spec checks. Isomorphic: test/wasi-testsuite.test.ts
 * runs it on WorkerPoolExecutor, the test page (./page) on WebWorkerExecutor
 * in Chromium, where programs and trees arrive as plain JSON (WireJob).
 */
import type { Executor, ResourceLimits, TreeDirectory, TreeEntry } from '../../protocol/runtime/executor.ts'

export interface SuiteJob {
  /** `<language>/<program>`, e.g. `rust/fd_readdir`. */
  name: string
  module: Uint8Array
  args: string[]
  env: Record<string, string>
  /** The spec's root directory, preopened as `/` (writable); none means no filesystem. */
  root?: TreeDirectory
}

export interface SuiteOutcome {
  name: string
  exitCode: number
  /** The executor's error name when the program did not exit by itself. */
  error: string | null
  stdout: string
  /** The tail of stderr: a Rust panic says there why a program failed. */
  stderr: string
}

/** Limits for suite programs: generous, with a time limit that fails a hang quickly. */
export const SUITE_LIMITS: ResourceLimits = { timeoutMs: 20_000, memoryBytes: 256 * 1024 * 1024, outputBytes: 1024 * 1024 }

const decoder = new TextDecoder()

export async function runSuiteJob (executor: Executor, job: SuiteJob): Promise<SuiteOutcome> {
  const result = await executor.execute({
    module: { cid: job.name, load: async () => job.module },
    abi: 'wasi',
    args: job.args,
    env: job.env,
    input: new Uint8Array(0),
    limits: SUITE_LIMITS,
    // A fresh copy per run: the executor copies on write and never changes the seed.
    ...(job.root === undefined ? {} : { mounts: [{ path: '/', tree: job.root, writable: true }] })
  })
  return {
    name: job.name,
    exitCode: result.exitCode,
    error: result.error?.name ?? null,
    stdout: decoder.decode(result.output),
    stderr: decoder.decode(result.stderr)
  }
}

/** A job as it crosses into the page: bytes as base64, which page.evaluate carries as plain strings. */
export interface WireJob {
  name: string
  module: string
  args: string[]
  env: Record<string, string>
  root?: WireDirectory
}

export interface WireDirectory {
  type: 'directory'
  entries: Record<string, WireDirectory | { type: 'file', content: string } | { type: 'symlink', target: string }>
}

export function toWire (job: SuiteJob): WireJob {
  const tree = (dir: TreeDirectory): WireDirectory => ({
    type: 'directory',
    entries: Object.fromEntries(Object.entries(dir.entries).map(([name, entry]) => [name,
      entry.type === 'directory' ? tree(entry) : entry.type === 'file' ? { type: 'file', content: toBase64(entry.content) } : entry]))
  })
  return { name: job.name, module: toBase64(job.module), args: job.args, env: job.env, ...(job.root === undefined ? {} : { root: tree(job.root) }) }
}

export function fromWire (wire: WireJob): SuiteJob {
  const tree = (dir: WireDirectory): TreeDirectory => ({
    type: 'directory',
    entries: Object.fromEntries(Object.entries(dir.entries).map(([name, entry]): [string, TreeEntry] => [name,
      entry.type === 'directory' ? tree(entry) : entry.type === 'file' ? { type: 'file', content: fromBase64(entry.content) } : entry]))
  })
  return { name: wire.name, module: fromBase64(wire.module), args: wire.args, env: wire.env, ...(wire.root === undefined ? {} : { root: tree(wire.root) }) }
}

function toBase64 (bytes: Uint8Array): string {
  let binary = ''
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  }
  return btoa(binary)
}

function fromBase64 (text: string): Uint8Array {
  return Uint8Array.from(atob(text), char => char.charCodeAt(0))
}
