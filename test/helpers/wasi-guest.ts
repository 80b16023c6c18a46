/**
 * Calls our WASI host's functions directly from a test, as a module would:
 * arguments are pointers into a memory the test owns, results come back as
 * errnos and as values written to that memory. Lets tests reach corners (a
 * limit, a cookie, a clock) without writing a Wasm program for each.
 */
import { RIGHT_FD_READ, RIGHT_FD_WRITE } from '../../protocol/runtime/wasi-abi.ts'
import { Wasi } from '../../protocol/runtime/wasi.ts'
import type { WasiOptions } from '../../protocol/runtime/wasi.ts'

const PREVIEW1 = [
  'args_get', 'args_sizes_get', 'environ_get', 'environ_sizes_get', 'clock_res_get', 'clock_time_get',
  'fd_advise', 'fd_allocate', 'fd_close', 'fd_datasync', 'fd_fdstat_get', 'fd_fdstat_set_flags', 'fd_fdstat_set_rights',
  'fd_filestat_get', 'fd_filestat_set_size', 'fd_filestat_set_times', 'fd_pread', 'fd_prestat_get', 'fd_prestat_dir_name',
  'fd_pwrite', 'fd_read', 'fd_readdir', 'fd_renumber', 'fd_seek', 'fd_sync', 'fd_tell', 'fd_write',
  'path_create_directory', 'path_filestat_get', 'path_filestat_set_times', 'path_link', 'path_open', 'path_readlink',
  'path_remove_directory', 'path_rename', 'path_symlink', 'path_unlink_file', 'poll_oneoff', 'proc_exit', 'proc_raise',
  'random_get', 'sched_yield', 'sock_accept', 'sock_recv', 'sock_send', 'sock_shutdown'
] as const

export type Preview1Function = typeof PREVIEW1[number]

/** Every right a descriptor can hold. */
export const ALL_RIGHTS = (1n << 28n) - 1n

/** Scratch areas in the guest memory. */
const OUT = 0x100
const PATH_A = 0x1000
const PATH_B = 0x2000
const IOVEC = 0x3000
export const BUFFER = 0x10000

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** A module that imports all 46 preview1 functions and nothing else: enough for Wasi.imports(). */
function importingModule (): WebAssembly.Module {
  const name = (text: string): number[] => [text.length, ...encoder.encode(text)]
  const entries = PREVIEW1.flatMap(fn => [...name('wasi_snapshot_preview1'), ...name(fn), 0x00, 0x00])
  const importBody = [...uleb(PREVIEW1.length), ...entries]
  return new WebAssembly.Module(new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
    0x02, ...uleb(importBody.length), ...importBody
  ]))
}

function uleb (value: number): number[] {
  const out: number[] = []
  do {
    out.push((value & 0x7f) | (value >= 0x80 ? 0x80 : 0))
    value >>>= 7
  } while (value !== 0)
  return out
}

let module: WebAssembly.Module | undefined

type HostFunction = (...args: Array<number | bigint>) => number

export interface OpenOptions {
  oflags?: number
  rights?: bigint
  inheriting?: bigint
  fdflags?: number
  /** LOOKUPFLAGS_SYMLINK_FOLLOW. */
  follow?: boolean
}

export class Guest {
  readonly wasi: Wasi
  readonly memory = new WebAssembly.Memory({ initial: 4 })
  readonly #calls: Record<string, HostFunction>

  constructor (options: Partial<WasiOptions> = {}) {
    this.wasi = new Wasi({ argv: ['main.wasm'], env: {}, stdin: new Uint8Array(0), outputBytes: 1 << 20, ...options })
    module ??= importingModule()
    this.#calls = this.wasi.imports(module).wasi_snapshot_preview1 as Record<string, HostFunction>
    this.wasi.bind(this.memory)
  }

  /** Calls a preview1 function; returns its errno. */
  call (fn: Preview1Function, ...args: Array<number | bigint>): number {
    return (this.#calls[fn] as HostFunction)(...args)
  }

  view (): DataView {
    return new DataView(this.memory.buffer)
  }

  /** The u32 or u64 a call wrote at the scratch result slot. */
  u32 (at = OUT): number {
    return this.view().getUint32(at, true)
  }

  u64 (at = OUT): bigint {
    return this.view().getBigUint64(at, true)
  }

  /** Puts `text` in scratch area A (or B) and returns [pointer, length]. */
  put (text: string, area: 'a' | 'b' = 'a'): [number, number] {
    const bytes = encoder.encode(text)
    const at = area === 'a' ? PATH_A : PATH_B
    new Uint8Array(this.memory.buffer, at, bytes.length).set(bytes)
    return [at, bytes.length]
  }

  /** path_open: [errno, fd]. Rights default to read and write for files. */
  open (dir: number, path: string, options: OpenOptions = {}): [number, number] {
    const errno = this.call('path_open', dir, options.follow === true ? 1 : 0, ...this.put(path), options.oflags ?? 0,
      options.rights ?? (RIGHT_FD_READ | RIGHT_FD_WRITE), options.inheriting ?? 0n, options.fdflags ?? 0, OUT)
    return [errno, errno === 0 ? this.u32() : -1]
  }

  /** fd_write of `text` in one iovec: [errno, bytes written]. */
  write (fd: number, text: string | Uint8Array): [number, number] {
    const bytes = typeof text === 'string' ? encoder.encode(text) : text
    new Uint8Array(this.memory.buffer, BUFFER, bytes.length).set(bytes)
    this.view().setUint32(IOVEC, BUFFER, true)
    this.view().setUint32(IOVEC + 4, bytes.length, true)
    const errno = this.call('fd_write', fd, IOVEC, 1, OUT)
    return [errno, errno === 0 ? this.u32() : 0]
  }

  /** fd_read of up to `length` bytes: [errno, text]. */
  read (fd: number, length = 4096): [number, string] {
    this.view().setUint32(IOVEC, BUFFER, true)
    this.view().setUint32(IOVEC + 4, length, true)
    const errno = this.call('fd_read', fd, IOVEC, 1, OUT)
    return [errno, errno === 0 ? decoder.decode(new Uint8Array(this.memory.buffer, BUFFER, this.u32())) : '']
  }

  /** path_filestat_get: [errno, filestat]. */
  stat (dir: number, path: string, follow = false): [number, { dev: bigint, ino: bigint, filetype: number, nlink: bigint, size: bigint, mtim: bigint }] {
    const errno = this.call('path_filestat_get', dir, follow ? 1 : 0, ...this.put(path), BUFFER)
    const view = this.view()
    return [errno, {
      dev: view.getBigUint64(BUFFER, true),
      ino: view.getBigUint64(BUFFER + 8, true),
      filetype: view.getUint8(BUFFER + 16),
      nlink: view.getBigUint64(BUFFER + 24, true),
      size: view.getBigUint64(BUFFER + 32, true),
      mtim: view.getBigUint64(BUFFER + 48, true)
    }]
  }

  /** fd_readdir into a buffer of `length` bytes: [errno, entries, bytes used]. Partial entries at the end are left out. */
  readdir (fd: number, cookie = 0n, length = 4096): [number, Array<{ name: string, next: bigint, ino: bigint, type: number }>, number] {
    const errno = this.call('fd_readdir', fd, BUFFER, length, cookie, OUT)
    const used = this.u32()
    const view = this.view()
    const entries: Array<{ name: string, next: bigint, ino: bigint, type: number }> = []
    for (let at = 0; at + 24 <= used;) {
      const nameLength = view.getUint32(BUFFER + at + 16, true)
      if (at + 24 + nameLength > used) {
        break
      }
      entries.push({
        next: view.getBigUint64(BUFFER + at, true),
        ino: view.getBigUint64(BUFFER + at + 8, true),
        type: view.getUint8(BUFFER + at + 20),
        name: decoder.decode(new Uint8Array(this.memory.buffer, BUFFER + at + 24, nameLength))
      })
      at += 24 + nameLength
    }
    return [errno, entries, used]
  }

  /** clock_time_get on the monotonic clock. */
  now (): bigint {
    this.call('clock_time_get', 1, 0n, OUT)
    return this.u64()
  }
}
