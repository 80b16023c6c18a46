/**
 * Our deterministic WASI preview1 host, all 46 functions: stdin is the job
 * input, stdout the job output, the filesystem is the job's mounts held in
 * memory, and the clock and randomness are virtual. Our own rather than
 * `node:wasi` or a browser shim so that limits are exact and the same module,
 * input and mounts give the same bytes in every runtime: receipts are checked
 * by running a job again elsewhere. The calls live in wasi-*-calls.ts and
 * wasi-poll.ts; this file holds the run's state and the process-level calls.
 */
import type { Mount, MountResult } from './executor.ts'
import { FdTable } from './fd-table.ts'
import { DEFAULT_FILESYSTEM_BYTES, MAX_INODES, MemoryFs } from './fs.ts'
import { mountAll } from './fs-mounts.ts'
import type { MountedFs } from './fs-mounts.ts'
import { WASI_MODULE } from './prepare.ts'
import { CLOCK_STEP_NS, VirtualClock } from './virtual-clock.ts'
import {
  CLOCK_ID_MAX, DIRECTORY_RIGHTS, ERRNO_FAULT, ERRNO_INVAL, ERRNO_NOSYS, ERRNO_NOTSOCK, FILE_RIGHTS, Errno, fail
} from './wasi-abi.ts'
import { fdCalls } from './wasi-fd-calls.ts'
import type { Syscall, WasiHost } from './wasi-host.ts'
import { GuestMemory } from './wasi-memory.ts'
import { pathCalls } from './wasi-path-calls.ts'
import { pollCalls } from './wasi-poll.ts'
import { Stdio } from './wasi-stdio.ts'

const RANDOM_SEED = 0x5eed_cafe

/** Thrown by proc_exit to unwind the module; the runner turns it into an exit code. */
export class ProcExit extends Error {
  readonly code: number

  constructor (code: number) {
    super(`proc_exit(${code})`)
    this.code = code
  }
}

export interface WasiOptions {
  /** Full argv, argv[0] included. */
  argv: readonly string[]
  env: Readonly<Record<string, string>>
  stdin: Uint8Array
  /** stdout bytes allowed; writing more throws OutputLimitError. */
  outputBytes: number
  /** Preopened directories; without any the module has no filesystem. */
  mounts?: readonly Mount[]
  /** Bytes the filesystem may hold: contents, names, symlink targets. @default DEFAULT_FILESYSTEM_BYTES */
  filesystemBytes?: number
}

export class Wasi {
  readonly #argv: Uint8Array[]
  readonly #environ: Uint8Array[]
  readonly #host: WasiHost
  readonly #mounted: MountedFs | undefined
  #randomState = RANDOM_SEED

  /** Throws InvalidMountError or FilesystemLimitError for mounts it cannot build. */
  constructor (options: WasiOptions) {
    const encoder = new TextEncoder()
    this.#argv = options.argv.map(arg => encoder.encode(`${arg}\0`))
    // Sorted so that the order never depends on how the job spec was decoded.
    this.#environ = Object.keys(options.env).sort().map(key => encoder.encode(`${key}=${options.env[key]}\0`))
    const clock = new VirtualClock()
    const now = (): bigint => clock.now()
    const bytes = options.filesystemBytes ?? DEFAULT_FILESYSTEM_BYTES
    // No mounts, no inodes: an empty MemoryFs is a few fields, so jobs without files pay nothing.
    this.#mounted = options.mounts !== undefined && options.mounts.length > 0 ? mountAll(options.mounts, bytes, now) : undefined
    const fs = this.#mounted?.fs ?? new MemoryFs({ bytes, inodes: MAX_INODES }, now)
    const fds = new FdTable(fs)
    for (const { path, dir } of this.#mounted?.preopens ?? []) {
      fds.add({ kind: 'directory', node: dir, flags: 0, rightsBase: DIRECTORY_RIGHTS, rightsInheriting: DIRECTORY_RIGHTS | FILE_RIGHTS, preopen: path })
    }
    this.#host = { memory: new GuestMemory(), fds, fs, stdio: new Stdio(options.stdin, options.outputBytes), clock }
  }

  /** The import object for `module`: every preview1 function it imports, unknown names as ENOSYS stubs. */
  imports (module: WebAssembly.Module): WebAssembly.Imports {
    // Only the groups the module uses are built: most jobs never touch a path or poll.
    const groups = new Map<Group, Record<string, Syscall>>()
    const functions: Record<string, Syscall> = {}
    for (const { module: from, name } of WebAssembly.Module.imports(module)) {
      if (from === WASI_MODULE) {
        const group = groupOf(name)
        let calls = groups.get(group)
        if (calls === undefined) {
          calls = group === 'fd' ? fdCalls(this.#host) : group === 'path' ? pathCalls(this.#host) : group === 'poll' ? pollCalls(this.#host) : this.#processCalls()
          groups.set(group, calls)
        }
        const call = calls[name]
        functions[name] = call === undefined ? () => ERRNO_NOSYS : guard(call)
      }
    }
    return { [WASI_MODULE]: functions }
  }

  /** Gives the host the instance's memory; call before running the module. */
  bind (memory: WebAssembly.Memory): void {
    this.#host.memory.bind(memory)
  }

  stdout (): Uint8Array<ArrayBuffer> {
    return this.#host.stdio.stdout()
  }

  /** The last 4 KiB written to stderr. */
  stderr (): Uint8Array<ArrayBuffer> {
    return this.#host.stdio.stderr()
  }

  /** The final trees of the writable mounts; undefined when there were none. */
  mountResults (): MountResult[] | undefined {
    const results = this.#mounted?.results()
    return results === undefined || results.length === 0 ? undefined : results
  }

  #nextRandom (): number {
    // mulberry32: tiny, fast and identical in every engine.
    this.#randomState = (this.#randomState + 0x6d2b79f5) | 0
    let t = this.#randomState
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }

  #processCalls (): Record<string, Syscall> {
    const { memory, fds, clock } = this.#host
    /** Writes NUL-terminated strings and the pointers to them, as args_get and environ_get do. */
    const writeStrings = (strings: Uint8Array[], pointers: number, buffer: number): number => {
      let offset = buffer >>> 0
      strings.forEach((string, i) => {
        memory.setU32(pointers + i * 4, offset)
        memory.bytes(offset, string.length).set(string)
        offset += string.length
      })
      return 0
    }
    const writeSizes = (strings: Uint8Array[], count: number, size: number): number => {
      memory.setU32(count, strings.length)
      memory.setU32(size, strings.reduce((sum, string) => sum + string.length, 0))
      return 0
    }
    const checkClock = (id: number): void => {
      if (id < 0 || id > CLOCK_ID_MAX) {
        fail(ERRNO_INVAL)
      }
    }
    // Sockets cannot be opened here, so no descriptor is one.
    const notSocket = (fd: number): number => {
      fds.get(fd)
      return ERRNO_NOTSOCK
    }
    return {
      args_get: (argv: number, buffer: number) => writeStrings(this.#argv, argv, buffer),
      args_sizes_get: (count: number, size: number) => writeSizes(this.#argv, count, size),
      environ_get: (environ: number, buffer: number) => writeStrings(this.#environ, environ, buffer),
      environ_sizes_get: (count: number, size: number) => writeSizes(this.#environ, count, size),
      clock_res_get: (id: number, resolution: number) => {
        checkClock(id)
        memory.setU64(resolution, CLOCK_STEP_NS)
        return 0
      },
      clock_time_get: (id: number, _precision: bigint, time: number) => {
        checkClock(id)
        memory.setU64(time, clock.read())
        return 0
      },
      // A PRNG with a fixed seed, so runs are reproducible. Jobs that need
      // real entropy must get it in their input, where the receipt covers it.
      random_get: (buffer: number, length: number) => {
        const out = memory.bytes(buffer, length)
        for (let i = 0; i < out.length; i += 4) {
          const word = this.#nextRandom()
          for (let j = 0; j < 4 && i + j < out.length; j++) {
            out[i + j] = (word >>> (j * 8)) & 0xff
          }
        }
        return 0
      },
      // The exit status is a u32; the JS boundary hands it over as a signed i32.
      proc_exit: (code: number) => {
        throw new ProcExit(code >>> 0)
      },
      // No signals: a module that wants to stop says so with proc_exit.
      proc_raise: () => ERRNO_NOSYS,
      sched_yield: () => 0,
      sock_accept: notSocket,
      sock_recv: notSocket,
      sock_send: notSocket,
      sock_shutdown: notSocket
    }
  }
}

type Group = 'fd' | 'path' | 'poll' | 'process'

/** Which file holds a preview1 function, by its name. */
function groupOf (name: string): Group {
  return name.startsWith('fd_') ? 'fd' : name.startsWith('path_') ? 'path' : name === 'poll_oneoff' ? 'poll' : 'process'
}

/**
 * Turns what a call throws into its errno: an Errno from the host, EFAULT
 * for a bad pointer from the module (its own bug, as a kernel would say).
 * Anything else (ProcExit, a limit) unwinds the module.
 */
function guard (call: Syscall): Syscall {
  return (...args) => {
    try {
      return call(...args)
    } catch (err) {
      if (err instanceof Errno) {
        return err.code
      }
      if (err instanceof RangeError) {
        return ERRNO_FAULT
      }
      throw err
    }
  }
}
