/**
 * The fd_* calls of WASI preview1. A descriptor without the right a call
 * needs answers ENOTCAPABLE; streams answer what a pipe would (ESPIPE for
 * seeking, EINVAL for syncing or resizing).
 */
import {
  ADVICE_MAX, DIRENT_SIZE, ERRNO_BADF, ERRNO_FBIG, ERRNO_INVAL, ERRNO_ISDIR, ERRNO_NAMETOOLONG, ERRNO_NOTCAPABLE,
  ERRNO_NOTDIR, ERRNO_SPIPE, FDFLAGS_ALL, FDFLAGS_APPEND, FDSTAT_SIZE, FILETYPE_DIRECTORY, FILETYPE_REGULAR_FILE,
  FILETYPE_UNKNOWN, PREOPENTYPE_DIR, RIGHT_FD_ADVISE, RIGHT_FD_ALLOCATE, RIGHT_FD_DATASYNC, RIGHT_FD_FDSTAT_SET_FLAGS,
  RIGHT_FD_FILESTAT_GET, RIGHT_FD_FILESTAT_SET_SIZE, RIGHT_FD_FILESTAT_SET_TIMES, RIGHT_FD_READ, RIGHT_FD_READDIR,
  RIGHT_FD_SEEK, RIGHT_FD_SYNC, RIGHT_FD_TELL, RIGHT_FD_WRITE, WHENCE_CUR, WHENCE_END, WHENCE_SET, Errno, fail
} from './wasi-abi.ts'
import type { Descriptor, FileDescriptor } from './fd-table.ts'
import { filetype } from './fs.ts'
import type { DirNode } from './fs.ts'
import { setTimes, writeFilestat } from './wasi-host.ts'
import type { Syscall, WasiHost } from './wasi-host.ts'

const MAX_OFFSET = BigInt(Number.MAX_SAFE_INTEGER)
const encoder = new TextEncoder()

export function fdCalls (host: WasiHost): Record<string, Syscall> {
  const { memory, fds, fs, stdio } = host

  /** A regular file holding `rights`: a stream answers `streamErrno`, a directory EISDIR. */
  const file = (fd: number, rights: bigint, streamErrno: number): FileDescriptor => {
    const descriptor = fds.get(fd)
    if (isStream(descriptor)) {
      fail(streamErrno)
    }
    requireRights(descriptor, rights)
    if (descriptor.kind !== 'file') {
      fail(ERRNO_ISDIR)
    }
    return descriptor
  }

  const sync = (fd: number, right: bigint): number => {
    const descriptor = fds.get(fd)
    if (isStream(descriptor)) {
      fail(ERRNO_INVAL)
    }
    requireRights(descriptor, right)
    return 0
  }

  return {
    fd_advise: (fd: number, offset: bigint, length: bigint, advice: number) => {
      file(fd, RIGHT_FD_ADVISE, ERRNO_SPIPE)
      if (advice < 0 || advice > ADVICE_MAX || offset < 0n || length < 0n) {
        fail(ERRNO_INVAL)
      }
      // Advice changes nothing in memory.
      return 0
    },
    fd_allocate: (fd: number, offset: bigint, length: bigint) => {
      const { node } = file(fd, RIGHT_FD_ALLOCATE, ERRNO_SPIPE)
      if (offset < 0n || length <= 0n) {
        fail(ERRNO_INVAL)
      }
      const end = toOffset(offset + length)
      if (end > node.size) {
        fs.resize(node, end)
      }
      return 0
    },
    fd_close: (fd: number) => {
      fds.close(fd)
      return 0
    },
    fd_datasync: (fd: number) => sync(fd, RIGHT_FD_DATASYNC),
    fd_sync: (fd: number) => sync(fd, RIGHT_FD_SYNC),
    fd_fdstat_get: (fd: number, stat: number) => {
      const descriptor = fds.get(fd)
      memory.bytes(stat, FDSTAT_SIZE).fill(0)
      memory.setU8(stat, isStream(descriptor) ? FILETYPE_UNKNOWN : descriptor.kind === 'file' ? FILETYPE_REGULAR_FILE : FILETYPE_DIRECTORY)
      memory.setU16(stat + 2, descriptor.flags)
      memory.setU64(stat + 8, descriptor.rightsBase)
      memory.setU64(stat + 16, descriptor.rightsInheriting)
      return 0
    },
    fd_fdstat_set_flags: (fd: number, flags: number) => {
      const descriptor = fds.with(fd, RIGHT_FD_FDSTAT_SET_FLAGS)
      if ((flags & ~FDFLAGS_ALL) !== 0) {
        fail(ERRNO_INVAL)
      }
      descriptor.flags = flags
      return 0
    },
    fd_fdstat_set_rights: (fd: number, base: bigint, inheriting: bigint) => {
      const descriptor = fds.get(fd)
      const newBase = BigInt.asUintN(64, base)
      const newInheriting = BigInt.asUintN(64, inheriting)
      // Rights can only be dropped, never regained.
      if ((newBase & ~descriptor.rightsBase) !== 0n || (newInheriting & ~descriptor.rightsInheriting) !== 0n) {
        fail(ERRNO_NOTCAPABLE)
      }
      descriptor.rightsBase = newBase
      descriptor.rightsInheriting = newInheriting
      return 0
    },
    fd_filestat_get: (fd: number, stat: number) => {
      const descriptor = fds.with(fd, RIGHT_FD_FILESTAT_GET)
      writeFilestat(memory, stat, isStream(descriptor) ? undefined : descriptor.node)
      return 0
    },
    fd_filestat_set_size: (fd: number, size: bigint) => {
      const { node } = file(fd, RIGHT_FD_FILESTAT_SET_SIZE, ERRNO_INVAL)
      fs.resize(node, toOffset(BigInt.asUintN(64, size)))
      return 0
    },
    fd_filestat_set_times: (fd: number, atim: bigint, mtim: bigint, fstflags: number) => {
      const descriptor = fds.with(fd, RIGHT_FD_FILESTAT_SET_TIMES)
      if (isStream(descriptor)) {
        fail(ERRNO_INVAL)
      }
      setTimes(host, descriptor.node, atim, mtim, fstflags)
      return 0
    },
    fd_pread: (fd: number, iovs: number, count: number, offset: bigint, nread: number) => {
      const { node } = file(fd, RIGHT_FD_READ, ERRNO_SPIPE)
      // Past the largest offset there is nothing to read, as past any end of file.
      const start = BigInt.asUintN(64, offset)
      let position = start > MAX_OFFSET ? Number.MAX_SAFE_INTEGER : Number(start)
      memory.setU32(nread, transfer(memory.iovecs(iovs, count), buffer => {
        const read = fs.read(node, position, buffer)
        position += read
        return read
      }))
      return 0
    },
    fd_pwrite: (fd: number, iovs: number, count: number, offset: bigint, nwritten: number) => {
      const { node } = file(fd, RIGHT_FD_WRITE, ERRNO_SPIPE)
      // POSIX: at `offset` even in append mode (Linux would append).
      let position = toOffset(BigInt.asUintN(64, offset))
      memory.setU32(nwritten, transfer(memory.iovecs(iovs, count), buffer => {
        fs.write(node, position, buffer)
        position += buffer.length
        return buffer.length
      }))
      return 0
    },
    fd_read: (fd: number, iovs: number, count: number, nread: number) => {
      const descriptor = fds.with(fd, RIGHT_FD_READ)
      const buffers = memory.iovecs(iovs, count)
      if (descriptor.kind === 'file') {
        memory.setU32(nread, transfer(buffers, buffer => {
          const read = fs.read(descriptor.node, descriptor.position, buffer)
          descriptor.position += read
          return read
        }))
      } else if (descriptor.kind === 'stdin') {
        memory.setU32(nread, transfer(buffers, buffer => stdio.read(buffer)))
      } else {
        // Only files and stdin ever hold the read right.
        fail(ERRNO_BADF)
      }
      return 0
    },
    fd_write: (fd: number, iovs: number, count: number, nwritten: number) => {
      const descriptor = fds.with(fd, RIGHT_FD_WRITE)
      const buffers = memory.iovecs(iovs, count)
      let written = 0
      if (descriptor.kind === 'stdout') {
        for (const buffer of buffers) {
          written += stdio.writeStdout(buffer)
        }
      } else if (descriptor.kind === 'stderr') {
        for (const buffer of buffers) {
          written += stdio.writeStderr(buffer)
        }
      } else if (descriptor.kind === 'file') {
        const { node } = descriptor
        written = transfer(buffers, buffer => {
          if ((descriptor.flags & FDFLAGS_APPEND) !== 0) {
            descriptor.position = node.size
          }
          fs.write(node, descriptor.position, buffer)
          descriptor.position += buffer.length
          return buffer.length
        })
      } else {
        // Only files, stdout and stderr ever hold the write right.
        fail(ERRNO_BADF)
      }
      memory.setU32(nwritten, written)
      return 0
    },
    fd_seek: (fd: number, offset: bigint, whence: number, newOffset: number) => {
      const descriptor = fds.get(fd)
      if (isStream(descriptor)) {
        fail(ERRNO_SPIPE)
      }
      // lseek(fd, 0, SEEK_CUR) is how libc asks for the position: fd_tell's right is enough.
      requireRights(descriptor, offset === 0n && whence === WHENCE_CUR && (descriptor.rightsBase & RIGHT_FD_TELL) !== 0n ? RIGHT_FD_TELL : RIGHT_FD_SEEK)
      if (descriptor.kind !== 'file') {
        fail(ERRNO_ISDIR)
      }
      const from = whence === WHENCE_SET ? 0 : whence === WHENCE_CUR ? descriptor.position : whence === WHENCE_END ? descriptor.node.size : -1
      if (from < 0) {
        fail(ERRNO_INVAL)
      }
      const target = BigInt(from) + offset
      if (target < 0n || target > MAX_OFFSET) {
        fail(ERRNO_INVAL)
      }
      descriptor.position = Number(target)
      memory.setU64(newOffset, target)
      return 0
    },
    fd_tell: (fd: number, offset: number) => {
      const descriptor = file(fd, RIGHT_FD_TELL, ERRNO_SPIPE)
      memory.setU64(offset, BigInt(descriptor.position))
      return 0
    },
    fd_readdir: (fd: number, buf: number, length: number, cookie: bigint, used: number) => {
      const descriptor = fds.with(fd, RIGHT_FD_READDIR)
      if (descriptor.kind !== 'directory') {
        fail(ERRNO_NOTDIR)
      }
      memory.setU32(used, readdir(descriptor.node, memory.bytes(buf, length), BigInt.asUintN(64, cookie)))
      return 0
    },
    fd_renumber: (from: number, to: number) => {
      fds.renumber(from, to)
      return 0
    },
    fd_prestat_get: (fd: number, prestat: number) => {
      const name = preopenName(fds.get(fd))
      memory.setU32(prestat, PREOPENTYPE_DIR)
      memory.setU32(prestat + 4, name.length)
      return 0
    },
    fd_prestat_dir_name: (fd: number, path: number, length: number) => {
      const name = preopenName(fds.get(fd))
      if (length >>> 0 < name.length) {
        fail(ERRNO_NAMETOOLONG)
      }
      memory.bytes(path, name.length).set(name)
      return 0
    }
  }
}

function isStream (descriptor: Descriptor): descriptor is Extract<Descriptor, { kind: 'stdin' | 'stdout' | 'stderr' }> {
  return descriptor.kind === 'stdin' || descriptor.kind === 'stdout' || descriptor.kind === 'stderr'
}

function requireRights (descriptor: Descriptor, rights: bigint): void {
  if ((descriptor.rightsBase & rights) !== rights) {
    fail(ERRNO_NOTCAPABLE)
  }
}

/** A file offset the host can hold as a number; bigger ones would need more bytes than any limit allows. */
function toOffset (offset: bigint): number {
  if (offset > MAX_OFFSET) {
    fail(ERRNO_FBIG)
  }
  return Number(offset)
}

function preopenName (descriptor: Descriptor): Uint8Array {
  if (descriptor.kind !== 'directory' || descriptor.preopen === undefined) {
    fail(ERRNO_BADF)
  }
  return encoder.encode(descriptor.preopen)
}

/**
 * Runs `move` over the buffers of a read or write until one comes up short.
 * An error after some bytes moved ends the call with those bytes, as POSIX
 * short reads and writes do; the next call then reports it.
 */
function transfer (buffers: readonly Uint8Array[], move: (buffer: Uint8Array) => number): number {
  let total = 0
  for (const buffer of buffers) {
    let moved: number
    try {
      moved = move(buffer)
    } catch (err) {
      if (err instanceof Errno && total > 0) {
        return total
      }
      throw err
    }
    total += moved
    if (moved < buffer.length) {
      break
    }
  }
  return total
}

/**
 * Fills `out` with dirents from `cookie` on: `.` and `..` first, then the
 * entries in the order they were added. Each entry's d_next is the cookie
 * that resumes after it; the last one is cut off at the end of the buffer,
 * and a full buffer tells the caller to ask again.
 */
function readdir (dir: DirNode, out: Uint8Array, cookie: bigint): number {
  let used = 0
  const emit = (next: bigint, ino: bigint, name: string, type: number): boolean => {
    const nameBytes = encoder.encode(name)
    const record = new Uint8Array(DIRENT_SIZE + nameBytes.length)
    const view = new DataView(record.buffer)
    view.setBigUint64(0, next, true)
    view.setBigUint64(8, ino, true)
    view.setUint32(16, nameBytes.length, true)
    view.setUint8(20, type)
    record.set(nameBytes, DIRENT_SIZE)
    const fits = Math.min(record.length, out.length - used)
    out.set(record.subarray(0, fits), used)
    used += fits
    return used < out.length
  }
  if (cookie === 0n && !emit(1n, dir.ino, '.', FILETYPE_DIRECTORY)) {
    return used
  }
  if (cookie <= 1n && !emit(2n, (dir.parent ?? dir).ino, '..', FILETYPE_DIRECTORY)) {
    return used
  }
  // An entry's d_next is its seq + 3, so cookie c resumes at the first entry with seq >= c - 2: the one after it.
  const listing = dir.listing()
  const from = cookie <= 2n ? 0 : Number(cookie - 2n)
  let low = 0
  let high = listing.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if ((listing[middle]?.seq ?? Infinity) < from) {
      low = middle + 1
    } else {
      high = middle
    }
  }
  for (let i = low; i < listing.length; i++) {
    const { name, node, seq } = listing[i] as (typeof listing)[number]
    if (!emit(BigInt(seq) + 3n, node.ino, name, filetype(node))) {
      break
    }
  }
  return used
}
