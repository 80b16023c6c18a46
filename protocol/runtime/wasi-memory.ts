/**
 * Reads and writes the module's linear memory for the WASI host: integers
 * (little-endian), byte ranges, iovec arrays and paths. An access out of
 * bounds throws RangeError, which the syscall wrapper answers with EFAULT.
 */
import { ERRNO_ILSEQ, ERRNO_INVAL, ERRNO_NAMETOOLONG, fail } from './wasi-abi.ts'
import { PATH_MAX } from './fs.ts'

const utf8 = new TextDecoder('utf-8', { fatal: true })
/** Buffers one read or write may name, as Linux allows (UIO_MAXIOV): the host keeps a view of each. */
const IOV_MAX = 1024

export class GuestMemory {
  #memory: WebAssembly.Memory | undefined
  #view = new DataView(new ArrayBuffer(0))

  /** Gives the host the instance's memory; call before running the module. */
  bind (memory: WebAssembly.Memory): void {
    this.#memory = memory
  }

  /** The current view: memory.grow replaces the buffer, so check it on every access. */
  #current (): DataView {
    const memory = this.#memory
    if (memory === undefined) {
      throw new Error('wasi: no memory bound')
    }
    if (this.#view.buffer !== memory.buffer) {
      this.#view = new DataView(memory.buffer)
    }
    return this.#view
  }

  bytes (ptr: number, length: number): Uint8Array {
    return new Uint8Array(this.#current().buffer, ptr >>> 0, length >>> 0)
  }

  u8 (ptr: number): number {
    return this.#current().getUint8(ptr >>> 0)
  }

  u16 (ptr: number): number {
    return this.#current().getUint16(ptr >>> 0, true)
  }

  u32 (ptr: number): number {
    return this.#current().getUint32(ptr >>> 0, true)
  }

  u64 (ptr: number): bigint {
    return this.#current().getBigUint64(ptr >>> 0, true)
  }

  setU8 (ptr: number, value: number): void {
    this.#current().setUint8(ptr >>> 0, value)
  }

  setU16 (ptr: number, value: number): void {
    this.#current().setUint16(ptr >>> 0, value, true)
  }

  setU32 (ptr: number, value: number): void {
    this.#current().setUint32(ptr >>> 0, value, true)
  }

  setU64 (ptr: number, value: bigint): void {
    this.#current().setBigUint64(ptr >>> 0, value, true)
  }

  /** The buffers of an iovec (or ciovec) array: `count` pairs of (pointer, length), at most IOV_MAX (EINVAL). */
  iovecs (iovs: number, count: number): Uint8Array[] {
    if (count >>> 0 > IOV_MAX) {
      fail(ERRNO_INVAL)
    }
    const buffers: Uint8Array[] = []
    for (let i = 0; i < count >>> 0; i++) {
      const entry = (iovs >>> 0) + i * 8
      buffers.push(this.bytes(this.u32(entry), this.u32(entry + 4)))
    }
    return buffers
  }

  /** A path argument: UTF-8 (else EILSEQ), no NUL (EINVAL), at most PATH_MAX bytes (ENAMETOOLONG). */
  path (ptr: number, length: number): string {
    if (length >>> 0 > PATH_MAX) {
      fail(ERRNO_NAMETOOLONG)
    }
    let path: string
    try {
      path = utf8.decode(this.bytes(ptr, length))
    } catch (err) {
      if (err instanceof RangeError) {
        throw err
      }
      fail(ERRNO_ILSEQ)
    }
    if (path.includes('\0')) {
      fail(ERRNO_INVAL)
    }
    return path
  }
}
