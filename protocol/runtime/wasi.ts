/**
 * A small, deterministic WASI preview1 host: stdin is the job input, stdout is
 * the job output, and there is no filesystem, network or real clock. Our own
 * rather than `node:wasi` or a browser shim so that limits are exact and the
 * same module and input give the same bytes in every runtime; receipts are
 * checked by running a job again elsewhere.
 */
import { OutputLimitError } from '../errors.ts'
import { WASI_MODULE } from './prepare.ts'

const ERRNO_SUCCESS = 0
const ERRNO_BADF = 8
const ERRNO_FAULT = 21
const ERRNO_INVAL = 28
const ERRNO_NOSYS = 52
const ERRNO_NOTSUP = 58
const ERRNO_SPIPE = 70
const ERRNO_NOTCAPABLE = 76

const STDIN = 0
const STDOUT = 1
const STDERR = 2

const FILETYPE_CHARACTER_DEVICE = 2
const RIGHT_FD_READ = 1n << 1n
const RIGHT_FD_FDSTAT_SET_FLAGS = 1n << 3n
const RIGHT_FD_WRITE = 1n << 6n
const RIGHT_FD_FILESTAT_GET = 1n << 21n
const RIGHT_POLL_FD_READWRITE = 1n << 27n
const STDIO_RIGHTS = RIGHT_FD_FDSTAT_SET_FLAGS | RIGHT_FD_FILESTAT_GET | RIGHT_POLL_FD_READWRITE

const STDERR_TAIL_BYTES = 4096
/** 2024-01-01T00:00:00Z in nanoseconds: the time every job starts at. */
const CLOCK_START_NS = 1_704_067_200_000_000_000n
const CLOCK_STEP_NS = 1000n
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
}

type Syscall = (...args: never[]) => number

export class Wasi {
  readonly #argv: Uint8Array[]
  readonly #environ: Uint8Array[]
  readonly #stdin: Uint8Array
  readonly #outputBytes: number
  #stdinOffset = 0
  /** One growing buffer, not a list of chunks: small writes would fill the JS heap. */
  #stdout = new Uint8Array(0)
  #stdoutLength = 0
  #stderr = new Uint8Array(0)
  #memory: WebAssembly.Memory | undefined
  #clockNs = CLOCK_START_NS
  #randomState = RANDOM_SEED

  constructor (options: WasiOptions) {
    const encoder = new TextEncoder()
    this.#argv = options.argv.map(arg => encoder.encode(`${arg}\0`))
    // Sorted so that the order never depends on how the job spec was decoded.
    this.#environ = Object.keys(options.env).sort().map(key => encoder.encode(`${key}=${options.env[key]}\0`))
    this.#stdin = options.stdin
    this.#outputBytes = options.outputBytes
  }

  /** The import object for `module`: every preview1 function it imports, unknown ones as ENOSYS stubs. */
  imports (module: WebAssembly.Module): WebAssembly.Imports {
    const calls = this.#syscalls()
    const functions: Record<string, Syscall> = {}
    for (const { module: from, name } of WebAssembly.Module.imports(module)) {
      if (from === WASI_MODULE) {
        functions[name] = calls[name] ?? (() => ERRNO_NOSYS)
      }
    }
    return { [WASI_MODULE]: functions }
  }

  /** Gives the host the instance's memory; call before running the module. */
  bind (memory: WebAssembly.Memory): void {
    this.#memory = memory
  }

  stdout (): Uint8Array<ArrayBuffer> {
    return this.#stdout.slice(0, this.#stdoutLength)
  }

  /** The last 4 KiB written to stderr. */
  stderr (): Uint8Array<ArrayBuffer> {
    return this.#stderr
  }

  #bytes (ptr: number, length: number): Uint8Array {
    if (this.#memory === undefined) {
      throw new Error('wasi: no memory bound')
    }
    // Throws RangeError when out of bounds, which `fault` turns into EFAULT.
    return new Uint8Array(this.#memory.buffer, ptr >>> 0, length >>> 0)
  }

  #view (): DataView {
    if (this.#memory === undefined) {
      throw new Error('wasi: no memory bound')
    }
    return new DataView(this.#memory.buffer)
  }

  #u32 (ptr: number): number {
    return this.#view().getUint32(ptr >>> 0, true)
  }

  #setU32 (ptr: number, value: number): void {
    this.#view().setUint32(ptr >>> 0, value, true)
  }

  #setU64 (ptr: number, value: bigint): void {
    this.#view().setBigUint64(ptr >>> 0, value, true)
  }

  /** Calls `fn` on each (buf, len) of an iovec array and returns the sum of what it returns. */
  #eachIovec (iovs: number, count: number, fn: (buf: Uint8Array) => number): number {
    let total = 0
    for (let i = 0; i < count; i++) {
      const entry = (iovs >>> 0) + i * 8
      total += fn(this.#bytes(this.#u32(entry), this.#u32(entry + 4)))
    }
    return total
  }

  /** Writes NUL-terminated strings and the pointers to them, as args_get and environ_get do. */
  #writeStrings (strings: Uint8Array[], pointers: number, buffer: number): number {
    let offset = buffer >>> 0
    strings.forEach((string, i) => {
      this.#setU32(pointers + i * 4, offset)
      this.#bytes(offset, string.length).set(string)
      offset += string.length
    })
    return ERRNO_SUCCESS
  }

  #writeSizes (strings: Uint8Array[], count: number, size: number): number {
    this.#setU32(count, strings.length)
    this.#setU32(size, strings.reduce((sum, string) => sum + string.length, 0))
    return ERRNO_SUCCESS
  }

  #write (fd: number, data: Uint8Array): number {
    if (fd === STDERR) {
      const joined = new Uint8Array(this.#stderr.length + data.length)
      joined.set(this.#stderr)
      joined.set(data, this.#stderr.length)
      this.#stderr = joined.slice(-STDERR_TAIL_BYTES)
      return data.length
    }
    const kept = Math.min(data.length, this.#outputBytes - this.#stdoutLength)
    const needed = this.#stdoutLength + kept
    if (needed > this.#stdout.length) {
      const grown = new Uint8Array(Math.min(this.#outputBytes, Math.max(needed, this.#stdout.length * 2, 4096)))
      grown.set(this.#stdout.subarray(0, this.#stdoutLength))
      this.#stdout = grown
    }
    this.#stdout.set(data.subarray(0, kept), this.#stdoutLength)
    this.#stdoutLength = needed
    if (kept < data.length) {
      throw new OutputLimitError(`the module wrote more than ${this.#outputBytes} bytes to stdout, the job's output limit`)
    }
    return data.length
  }

  #read (data: Uint8Array): number {
    const chunk = this.#stdin.subarray(this.#stdinOffset, this.#stdinOffset + data.length)
    data.set(chunk)
    this.#stdinOffset += chunk.length
    return chunk.length
  }

  #nextRandom (): number {
    // mulberry32: tiny, fast and identical in every engine.
    this.#randomState = (this.#randomState + 0x6d2b79f5) | 0
    let t = this.#randomState
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }

  #syscalls (): Record<string, Syscall> {
    const isStdio = (fd: number): boolean => fd === STDIN || fd === STDOUT || fd === STDERR
    const calls: Record<string, Syscall> = {
      args_get: (argv: number, buffer: number) => this.#writeStrings(this.#argv, argv, buffer),
      args_sizes_get: (count: number, size: number) => this.#writeSizes(this.#argv, count, size),
      environ_get: (environ: number, buffer: number) => this.#writeStrings(this.#environ, environ, buffer),
      environ_sizes_get: (count: number, size: number) => this.#writeSizes(this.#environ, count, size),
      clock_res_get: (id: number, resolution: number) => {
        if (id < 0 || id > 3) {
          return ERRNO_INVAL
        }
        this.#setU64(resolution, CLOCK_STEP_NS)
        return ERRNO_SUCCESS
      },
      // Every clock reads a fixed start that advances 1 µs per call: a real
      // clock would make output depend on the machine and break re-execution,
      // and a frozen one would hang programs that wait for time to pass.
      clock_time_get: (id: number, _precision: bigint, time: number) => {
        if (id < 0 || id > 3) {
          return ERRNO_INVAL
        }
        this.#setU64(time, this.#clockNs)
        this.#clockNs += CLOCK_STEP_NS
        return ERRNO_SUCCESS
      },
      // A PRNG with a fixed seed, so runs are reproducible. Jobs that need
      // real entropy must get it in their input, where the receipt covers it.
      random_get: (buffer: number, length: number) => {
        const out = this.#bytes(buffer, length)
        for (let i = 0; i < out.length; i += 4) {
          const word = this.#nextRandom()
          for (let j = 0; j < 4 && i + j < out.length; j++) {
            out[i + j] = (word >>> (j * 8)) & 0xff
          }
        }
        return ERRNO_SUCCESS
      },
      fd_write: (fd: number, iovs: number, count: number, written: number) => {
        if (fd !== STDOUT && fd !== STDERR) {
          return ERRNO_BADF
        }
        this.#setU32(written, this.#eachIovec(iovs, count, data => this.#write(fd, data)))
        return ERRNO_SUCCESS
      },
      fd_read: (fd: number, iovs: number, count: number, read: number) => {
        if (fd !== STDIN) {
          return ERRNO_BADF
        }
        this.#setU32(read, this.#eachIovec(iovs, count, data => this.#read(data)))
        return ERRNO_SUCCESS
      },
      fd_close: (fd: number) => isStdio(fd) ? ERRNO_SUCCESS : ERRNO_BADF,
      fd_seek: (fd: number) => isStdio(fd) ? ERRNO_SPIPE : ERRNO_BADF,
      fd_fdstat_get: (fd: number, stat: number) => {
        if (!isStdio(fd)) {
          return ERRNO_BADF
        }
        this.#bytes(stat, 24).fill(0)
        this.#bytes(stat, 1)[0] = FILETYPE_CHARACTER_DEVICE
        this.#setU64(stat + 8, STDIO_RIGHTS | (fd === STDIN ? RIGHT_FD_READ : RIGHT_FD_WRITE))
        return ERRNO_SUCCESS
      },
      fd_fdstat_set_flags: (fd: number) => isStdio(fd) ? ERRNO_SUCCESS : ERRNO_BADF,
      fd_filestat_get: (fd: number, stat: number) => {
        if (!isStdio(fd)) {
          return ERRNO_BADF
        }
        this.#bytes(stat, 64).fill(0)
        this.#bytes(stat + 16, 1)[0] = FILETYPE_CHARACTER_DEVICE
        return ERRNO_SUCCESS
      },
      // No preopened directories: the module has no filesystem at all.
      fd_prestat_get: () => ERRNO_BADF,
      fd_prestat_dir_name: () => ERRNO_BADF,
      path_open: () => ERRNO_NOTCAPABLE,
      // The exit status is a u32; the JS boundary hands it over as a signed i32.
      proc_exit: (code: number) => {
        throw new ProcExit(code >>> 0)
      },
      sched_yield: () => ERRNO_SUCCESS,
      poll_oneoff: () => ERRNO_NOTSUP
    }
    for (const [name, call] of Object.entries(calls)) {
      calls[name] = fault(call)
    }
    return calls
  }
}

/** A bad pointer from the module is its own bug: answer EFAULT, as a kernel would. */
function fault (call: Syscall): Syscall {
  return (...args) => {
    try {
      return call(...args)
    } catch (err) {
      if (err instanceof RangeError) {
        return ERRNO_FAULT
      }
      throw err
    }
  }
}
