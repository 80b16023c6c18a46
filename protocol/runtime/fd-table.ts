/**
 * The module's file descriptors: the three streams, preopened directories
 * and whatever it opens. A new descriptor takes the lowest free number, as
 * POSIX does, so numbering is deterministic; past MAX_OPEN_FDS opening fails
 * with EMFILE.
 */
import { ERRNO_BADF, ERRNO_MFILE, ERRNO_NOTCAPABLE, RIGHT_FD_READ, RIGHT_FD_WRITE, STREAM_RIGHTS, fail } from './wasi-abi.ts'
import type { DirNode, FileNode, MemoryFs } from './fs.ts'

/** Descriptors open at once, the three streams and the preopens included (RLIMIT_NOFILE). */
export const MAX_OPEN_FDS = 1024

interface DescriptorBase {
  /** fdflags: append, dsync, nonblock, rsync, sync. */
  flags: number
  rightsBase: bigint
  rightsInheriting: bigint
}

export interface StreamDescriptor extends DescriptorBase {
  kind: 'stdin' | 'stdout' | 'stderr'
}

export interface FileDescriptor extends DescriptorBase {
  kind: 'file'
  node: FileNode
  position: number
}

export interface DirectoryDescriptor extends DescriptorBase {
  kind: 'directory'
  node: DirNode
  /** The guest path of a preopened directory, which fd_prestat_dir_name reports. */
  preopen: string | undefined
}

export type Descriptor = StreamDescriptor | FileDescriptor | DirectoryDescriptor

export class FdTable {
  readonly #slots: Array<Descriptor | undefined>
  readonly #fs: MemoryFs | undefined
  #open = 3

  constructor (fs: MemoryFs | undefined) {
    this.#fs = fs
    this.#slots = [
      { kind: 'stdin', flags: 0, rightsBase: STREAM_RIGHTS | RIGHT_FD_READ, rightsInheriting: 0n },
      { kind: 'stdout', flags: 0, rightsBase: STREAM_RIGHTS | RIGHT_FD_WRITE, rightsInheriting: 0n },
      { kind: 'stderr', flags: 0, rightsBase: STREAM_RIGHTS | RIGHT_FD_WRITE, rightsInheriting: 0n }
    ]
  }

  /** The descriptor `fd` (an i32 from the module), or EBADF. */
  get (fd: number): Descriptor {
    const descriptor = this.#slots[fd]
    if (descriptor === undefined) {
      fail(ERRNO_BADF)
    }
    return descriptor
  }

  /** Like get, but checks that the descriptor holds `rights` (ENOTCAPABLE). */
  with (fd: number, rights: bigint): Descriptor {
    const descriptor = this.get(fd)
    if ((descriptor.rightsBase & rights) !== rights) {
      fail(ERRNO_NOTCAPABLE)
    }
    return descriptor
  }

  /** EMFILE when no descriptor is free. */
  checkRoom (): void {
    if (this.#open >= MAX_OPEN_FDS) {
      fail(ERRNO_MFILE)
    }
  }

  add (descriptor: Descriptor): number {
    this.checkRoom()
    let fd = this.#slots.indexOf(undefined)
    if (fd === -1) {
      fd = this.#slots.length
    }
    this.#slots[fd] = descriptor
    this.#open++
    if (descriptor.kind === 'file') {
      this.#fs?.open(descriptor.node)
    }
    return fd
  }

  close (fd: number): void {
    this.#release(this.get(fd))
    this.#slots[fd] = undefined
    this.#open--
  }

  /** Moves `from` to `to`, closing what `to` held; both must be open. */
  renumber (from: number, to: number): void {
    const descriptor = this.get(from)
    const replaced = this.get(to)
    if (from === to) {
      return
    }
    this.#release(replaced)
    this.#slots[to] = descriptor
    this.#slots[from] = undefined
    this.#open--
  }

  #release (descriptor: Descriptor): void {
    if (descriptor.kind === 'file') {
      this.#fs?.close(descriptor.node)
    }
  }
}
