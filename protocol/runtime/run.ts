/**
 * Runs a compiled module to completion and reports what happened as data, so
 * the outcome can cross a worker boundary and be compared between runtimes.
 * Synchronous: it is meant to run inside a worker that the host can terminate
 * when the time limit passes.
 */
import { InvalidModuleError, MemoryLimitError, WasmeshError, WasmTrapError, errorToWire } from '../errors.ts'
import type { Abi, Mount, MountResult } from './executor.ts'
import { DIRECT_EXPORTS, runDirect } from './direct.ts'
import { PAGE_BYTES, checkImport, formatMiB } from './prepare.ts'
import { ProcExit, Wasi } from './wasi.ts'

export interface RunLimits {
  memoryBytes: number
  outputBytes: number
  /** Bytes the filesystem may hold (wasi; see ExecuteRequest.filesystemBytes); DEFAULT_FILESYSTEM_BYTES when unset. */
  filesystemBytes?: number
}

export interface RunRequest {
  abi: Abi
  /** Full argv for wasi modules, argv[0] (the program name) included. */
  argv: readonly string[]
  env: Readonly<Record<string, string>>
  input: Uint8Array
  limits: RunLimits
  /** Preopened directories for wasi modules; the direct ABI has no filesystem and ignores them. */
  mounts?: readonly Mount[]
}

export interface RunOutcome {
  /** The exit status, or -1 when the module did not exit by itself. */
  exitCode: number
  /** Fresh buffers owned by the outcome, so they can be transferred. */
  output: Uint8Array<ArrayBuffer>
  stderr: Uint8Array<ArrayBuffer>
  /** Set when the module failed; `name` is an error class name from protocol/errors.ts. */
  error?: { name: string, message: string }
  /** The writable mounts' final trees, when the module ran. */
  mounts?: MountResult[]
  /** How much linear memory the module held at the end: the host recycles a worker after a big one. */
  memoryBytes?: number
}

const REQUIRED_EXPORTS: Record<Abi, ReadonlyArray<readonly [string, WebAssembly.ImportExportKind]>> = {
  wasi: [['_start', 'function'], ['memory', 'memory']],
  direct: DIRECT_EXPORTS.map(name => [name, name === 'memory' ? 'memory' : 'function'] as const)
}

/**
 * Checks a compiled module's imports and exports against the ABI: throws
 * ForbiddenImportError or InvalidModuleError naming the offending entry.
 */
export function checkModule (module: WebAssembly.Module, abi: Abi): void {
  for (const entry of WebAssembly.Module.imports(module)) {
    checkImport(abi, entry.module, entry.name, entry.kind)
  }
  const exports = WebAssembly.Module.exports(module)
  for (const [name, kind] of REQUIRED_EXPORTS[abi]) {
    if (!exports.some(entry => entry.name === name && entry.kind === kind)) {
      throw new InvalidModuleError(`the module does not export "${name}" (${kind}), which the ${abi} ABI requires`)
    }
  }
}

/** Instantiates and runs `module`; never throws for anything the module does. */
export function runModule (module: WebAssembly.Module, request: RunRequest): RunOutcome {
  let wasi: Wasi | undefined
  let memory: WebAssembly.Memory | undefined
  let directOutput = new Uint8Array(0)
  let ran = false
  const outcome = (exitCode: number, error?: RunOutcome['error']): RunOutcome => {
    const result: RunOutcome = {
      exitCode,
      output: wasi?.stdout() ?? directOutput,
      stderr: wasi?.stderr() ?? new Uint8Array(0)
    }
    if (error !== undefined) {
      result.error = error
    }
    const mounts = ran ? wasi?.mountResults() : undefined
    if (mounts !== undefined) {
      result.mounts = mounts
    }
    if (memory !== undefined) {
      result.memoryBytes = memory.buffer.byteLength
    }
    return result
  }
  try {
    checkModule(module, request.abi)
    if (request.abi === 'wasi') {
      const { argv, env, input, mounts, limits } = request
      wasi = new Wasi({ argv, env, stdin: input, outputBytes: limits.outputBytes, mounts, filesystemBytes: limits.filesystemBytes })
    }
    const instance = new WebAssembly.Instance(module, wasi?.imports(module) ?? {})
    memory = instance.exports.memory as WebAssembly.Memory
    if (wasi === undefined) {
      directOutput = runDirect(instance, request.input, request.limits.outputBytes)
    } else {
      wasi.bind(memory)
      ran = true
      ;(instance.exports._start as () => void)()
    }
    return outcome(0)
  } catch (err) {
    if (err instanceof ProcExit) {
      return outcome(err.code)
    }
    return outcome(-1, classify(err, memory, request.limits.memoryBytes))
  }
}

/**
 * Names a failure using only standard WebAssembly behaviour, so Node and
 * browsers agree. `memory` is undefined when instantiation itself failed.
 */
function classify (err: unknown, memory: WebAssembly.Memory | undefined, memoryBytes: number): { name: string, message: string } {
  if (err instanceof WasmeshError) {
    return errorToWire(err)
  }
  // A trap with memory at its cap is almost always an allocator giving up
  // after memory.grow failed (allocators grow in steps, often megabytes, so
  // "at the cap" means within a sixteenth of it); a RangeError before the
  // instance exists is the engine failing to allocate the initial memory.
  const atCap = memory !== undefined && memory.buffer.byteLength + Math.max(PAGE_BYTES, memoryBytes / 16) > memoryBytes
  if ((err instanceof WebAssembly.RuntimeError && atCap) || (err instanceof RangeError && (atCap || memory === undefined))) {
    return errorToWire(new MemoryLimitError(`the module needed more than ${formatMiB(memoryBytes)} MiB of memory, the job's limit`))
  }
  if (err instanceof WebAssembly.LinkError) {
    return errorToWire(new InvalidModuleError(`the module could not be instantiated: ${err.message}`))
  }
  // RuntimeError is a trap; a RangeError while running is the call stack overflowing.
  const reason = err instanceof Error ? err.message : String(err)
  return errorToWire(new WasmTrapError(`the module trapped: ${reason}`))
}
