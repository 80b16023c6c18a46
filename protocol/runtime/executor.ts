/**
 * The executor contract: how the peer hands a job to a sandbox. Node runs jobs
 * in worker_threads, browsers in Web Workers; both implement this interface and
 * share the runtime in `protocol/runtime/`, so the same module and input give
 * the same output everywhere.
 */

/** The calling conventions a job can ask for. */
export type Abi = 'wasi' | 'direct'

export const ABIS: readonly Abi[] = ['wasi', 'direct']

export interface ResourceLimits {
  /** Wall-clock time from start of execution, in milliseconds. */
  timeoutMs: number
  /** Maximum Wasm linear memory, in bytes (rounded down to 64 KiB pages). */
  memoryBytes: number
  /** Maximum bytes written to stdout (wasi) or returned (direct). */
  outputBytes: number
}

export interface ModuleSource {
  /** The module's CID, as a string: the compiled-module cache key. */
  cid: string
  /** Fetches the module's bytes. Only called when the executor has not compiled this CID yet. */
  load: (signal: AbortSignal) => Promise<Uint8Array>
}

export interface ExecuteRequest {
  module: ModuleSource
  abi: Abi
  /** argv[1…] for wasi modules; argv[0] is the module CID. */
  args: readonly string[]
  env: Readonly<Record<string, string>>
  input: Uint8Array
  limits: ResourceLimits
  signal?: AbortSignal
}

export interface ExecutionStats {
  /** Time spent loading and compiling the module; 0 when it came from the cache. */
  compileMs: number
  /** Time from instantiation to exit. */
  execMs: number
  /** Whether the compiled module came from the executor's cache. */
  moduleCached: boolean
}

export interface ExecuteResult {
  /** The module's exit status: 0 for success. -1 when it did not exit by itself. */
  exitCode: number
  /** stdout (wasi) or the returned bytes (direct), up to the output limit. */
  output: Uint8Array
  /** The last few KiB of stderr, for diagnostics. */
  stderr: Uint8Array
  /**
   * Why the job failed, when it did not exit by itself (a limit, a trap, an
   * invalid module or forbidden import). `name` is one of the error class names
   * in `protocol/errors.ts`.
   */
  error?: { name: string, message: string }
  stats: ExecutionStats
}

export interface Executor {
  /** How many jobs may run at once. */
  readonly slots: number
  start: () => Promise<void>
  stop: () => Promise<void>
  /**
   * Runs one job to completion. Resolves with a result for everything the
   * module itself did, including limits and traps; rejects only when the job
   * was aborted through `signal` or the executor broke.
   */
  execute: (request: ExecuteRequest) => Promise<ExecuteResult>
  /** CIDs of the modules compiled and cached, most recent first. */
  cachedModules: () => string[]
}
