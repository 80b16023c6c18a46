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

/**
 * A directory tree as plain data: what a mount starts from and what a
 * writable mount ends as. It has the shape of a UnixFS DAG (a directory maps
 * names to entries; a file is bytes; a symlink is its target), so it converts
 * to and from one entry by entry. Names are single path components: not
 * empty, not `.` or `..`, no `/` or NUL, at most 255 UTF-8 bytes. Plain
 * objects and Uint8Arrays only, so a tree crosses postMessage (structured
 * clone) as it is.
 */
export type TreeEntry = TreeFile | TreeDirectory | TreeSymlink

export interface TreeFile {
  type: 'file'
  content: Uint8Array
}

export interface TreeDirectory {
  type: 'directory'
  /** Unordered: the runtime lists a seeded directory in name order (see docs/runtimes.md). */
  entries: Record<string, TreeEntry>
}

export interface TreeSymlink {
  type: 'symlink'
  /**
   * Resolved relative to the symlink's directory. A target that is absolute,
   * or that climbs above the directory a lookup started from, is refused
   * when followed: symlinks never lead out of what the module was given.
   */
  target: string
}

/** A directory the module sees at `path`, as a WASI preopen. */
export interface Mount {
  /** Absolute guest path, normalized: `/`, `/data`, `/out/logs`. Mounts may nest. */
  path: string
  tree: TreeDirectory
  /**
   * A writable mount is copy-on-write over `tree`, which is never modified;
   * its final state comes back in ExecuteResult.mounts. A read-only one
   * refuses every change with EROFS.
   */
  writable: boolean
}

/** The final contents of a writable mount. */
export interface MountResult {
  path: string
  /** Files the module did not change are the seed's own Uint8Arrays. */
  tree: TreeDirectory
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
  /** argv[1…] for wasi modules; argv[0] is `programName`. */
  args: readonly string[]
  /**
   * argv[0] for wasi modules: a program name, as a shell would pass it. Not
   * the CID, so a program's own messages ("usage: main.wasm …") read well.
   * @default 'main.wasm'
   */
  programName?: string
  env: Readonly<Record<string, string>>
  input: Uint8Array
  limits: ResourceLimits
  /**
   * Directories the module sees (wasi only), each a preopened directory;
   * without mounts the module has no filesystem at all.
   */
  mounts?: readonly Mount[]
  /**
   * Bytes the job's filesystem may hold at once, the mounts included: file
   * contents, plus one per character of each entry's name and symlink's
   * target. Files live in the worker's JS heap, not in Wasm memory, so this
   * is a limit of its own rather than part of `limits.memoryBytes`. A write
   * past it fails with ENOSPC; mounts that already hold more fail the job
   * with FilesystemLimitError.
   * @default DEFAULT_FILESYSTEM_BYTES (64 MiB)
   */
  filesystemBytes?: number
  signal?: AbortSignal
}

export interface ExecutionStats {
  /** Time spent loading and compiling the module; 0 when it came from the cache. */
  compileMs: number
  /** Time from instantiation to exit. */
  execMs: number
  /** Whether the compiled module came from the executor's cache. */
  moduleCached: boolean
  /** Time the job waited in the executor for a free thread (a job handed over ahead of a slot, to be batched). */
  waitMs?: number
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
  /**
   * One per writable mount, in the order of `ExecuteRequest.mounts`, when
   * the module ran (whether it exited or trapped). Absent when it never ran
   * or was stopped from outside (time limit, abort).
   */
  mounts?: MountResult[]
  /** Linear memory the module held at the end, when it ran: a host may give memory back after a big job. */
  memoryBytes?: number
  stats: ExecutionStats
}

export interface Executor {
  /** How many jobs may run at once. */
  readonly slots: number
  /**
   * How many queued jobs of one module it hands a thread in one go, when they
   * are tiny: a server may then give it that many jobs per slot ahead of a
   * free slot, so they travel together. Absent: one at a time.
   */
  readonly threadBatch?: number
  start: () => Promise<void>
  stop: () => Promise<void>
  /**
   * Runs one job to completion. Resolves with a result for everything the
   * module itself did, including limits and traps; rejects only when the job
   * was aborted through `signal` or the executor broke.
   */
  execute: (request: ExecuteRequest) => Promise<ExecuteResult>
  /**
   * A job of `module` (its CID) is on its way: an executor that starts its
   * threads on demand starts the one the job will take now, while the job's
   * input and module are still being fetched and compiled, rather than after.
   */
  expectJob?: (module: string) => void
  /** CIDs of the modules compiled and cached, most recent first. */
  cachedModules: () => string[]
}
