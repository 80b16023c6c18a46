/**
 * The path_* calls of WASI preview1: each starts from a directory
 * descriptor (ENOTDIR for anything else) that must hold the call's right
 * (ENOTCAPABLE), and stays below it (see fs-path.ts).
 */
import {
  DIRECTORY_RIGHTS, ERRNO_EXIST, ERRNO_INVAL, ERRNO_ISDIR, ERRNO_LOOP, ERRNO_NOTCAPABLE, ERRNO_NOTDIR, ERRNO_ROFS,
  FDFLAGS_ALL, FILE_RIGHTS, LOOKUPFLAGS_SYMLINK_FOLLOW, OFLAGS_CREAT, OFLAGS_DIRECTORY, OFLAGS_EXCL, OFLAGS_TRUNC,
  RIGHT_FD_WRITE, RIGHT_PATH_CREATE_DIRECTORY, RIGHT_PATH_CREATE_FILE, RIGHT_PATH_FILESTAT_GET,
  RIGHT_PATH_FILESTAT_SET_SIZE, RIGHT_PATH_FILESTAT_SET_TIMES, RIGHT_PATH_LINK_SOURCE, RIGHT_PATH_LINK_TARGET,
  RIGHT_PATH_OPEN, RIGHT_PATH_READLINK, RIGHT_PATH_REMOVE_DIRECTORY, RIGHT_PATH_RENAME_SOURCE,
  RIGHT_PATH_RENAME_TARGET, RIGHT_PATH_SYMLINK, RIGHT_PATH_UNLINK_FILE, fail
} from './wasi-abi.ts'
import type { DirectoryDescriptor } from './fd-table.ts'
import { lookup, lookupParent } from './fs-path.ts'
import type { Node } from './fs.ts'
import { setTimes, writeFilestat } from './wasi-host.ts'
import type { Syscall, WasiHost } from './wasi-host.ts'

const encoder = new TextEncoder()

export function pathCalls (host: WasiHost): Record<string, Syscall> {
  const { memory, fds, fs } = host

  const directory = (fd: number, rights: bigint): DirectoryDescriptor => {
    const descriptor = fds.get(fd)
    if (descriptor.kind !== 'directory') {
      fail(ERRNO_NOTDIR)
    }
    if ((descriptor.rightsBase & rights) !== rights) {
      fail(ERRNO_NOTCAPABLE)
    }
    return descriptor
  }
  const follows = (lookupFlags: number): boolean => (lookupFlags & LOOKUPFLAGS_SYMLINK_FOLLOW) !== 0

  return {
    path_create_directory: (fd: number, path: number, length: number) => {
      const { dir, name } = lookupParent(directory(fd, RIGHT_PATH_CREATE_DIRECTORY).node, memory.path(path, length))
      fs.createDirectory(dir, name)
      return 0
    },
    path_filestat_get: (fd: number, flags: number, path: number, length: number, stat: number) => {
      const node = lookup(directory(fd, RIGHT_PATH_FILESTAT_GET).node, memory.path(path, length), follows(flags))
      writeFilestat(memory, stat, node)
      return 0
    },
    path_filestat_set_times: (fd: number, flags: number, path: number, length: number, atim: bigint, mtim: bigint, fstflags: number) => {
      const node = lookup(directory(fd, RIGHT_PATH_FILESTAT_SET_TIMES).node, memory.path(path, length), follows(flags))
      setTimes(host, node, atim, mtim, fstflags)
      return 0
    },
    path_link: (oldFd: number, oldFlags: number, oldPath: number, oldLength: number, newFd: number, newPath: number, newLength: number) => {
      const node = lookup(directory(oldFd, RIGHT_PATH_LINK_SOURCE).node, memory.path(oldPath, oldLength), follows(oldFlags))
      const { dir, name, trailingSlash } = lookupParent(directory(newFd, RIGHT_PATH_LINK_TARGET).node, memory.path(newPath, newLength))
      fs.link(node, dir, name, trailingSlash)
      return 0
    },
    path_open: (fd: number, dirFlags: number, path: number, length: number, oflags: number, base: bigint, inheriting: bigint, fdflags: number, opened: number) => {
      const parent = directory(fd, RIGHT_PATH_OPEN)
      const wanted = BigInt.asUintN(64, base)
      if ((fdflags & ~FDFLAGS_ALL) !== 0 || ((oflags & OFLAGS_DIRECTORY) !== 0 && (oflags & (OFLAGS_CREAT | OFLAGS_EXCL | OFLAGS_TRUNC)) !== 0)) {
        fail(ERRNO_INVAL)
      }
      const needs = ((oflags & OFLAGS_CREAT) !== 0 ? RIGHT_PATH_CREATE_FILE : 0n) | ((oflags & OFLAGS_TRUNC) !== 0 ? RIGHT_PATH_FILESTAT_SET_SIZE : 0n)
      if ((parent.rightsBase & needs) !== needs) {
        fail(ERRNO_NOTCAPABLE)
      }
      // Before anything is created or truncated: a failed open changes nothing.
      fds.checkRoom()
      const node = open(parent, memory.path(path, length), follows(dirFlags), oflags)
      if (node.kind === 'symlink') {
        // The last component is a symlink and the caller said not to follow it (O_NOFOLLOW).
        fail(ERRNO_LOOP)
      }
      if ((oflags & OFLAGS_DIRECTORY) !== 0 && node.kind !== 'directory') {
        fail(ERRNO_NOTDIR)
      }
      const writing = (wanted & RIGHT_FD_WRITE) !== 0n
      if (node.kind === 'directory' && (writing || (oflags & OFLAGS_TRUNC) !== 0)) {
        fail(ERRNO_ISDIR)
      }
      if (node.kind === 'file' && writing && !node.volume.writable) {
        fail(ERRNO_ROFS)
      }
      if (node.kind === 'file' && (oflags & OFLAGS_TRUNC) !== 0) {
        fs.resize(node, 0)
      }
      // Rights a descriptor gets: what was asked, within what its directory passes on and what its kind can do.
      const rightsBase = wanted & parent.rightsInheriting & (node.kind === 'directory' ? DIRECTORY_RIGHTS : FILE_RIGHTS)
      const rightsInheriting = BigInt.asUintN(64, inheriting) & parent.rightsInheriting
      const descriptor = node.kind === 'directory'
        ? { kind: 'directory' as const, node, flags: fdflags, rightsBase, rightsInheriting, preopen: undefined }
        : { kind: 'file' as const, node, position: 0, flags: fdflags, rightsBase, rightsInheriting }
      memory.setU32(opened, fds.add(descriptor))
      return 0
    },
    path_readlink: (fd: number, path: number, length: number, buf: number, bufLength: number, used: number) => {
      const node = lookup(directory(fd, RIGHT_PATH_READLINK).node, memory.path(path, length), false)
      if (node.kind !== 'symlink') {
        fail(ERRNO_INVAL)
      }
      // A short buffer gets the start of the target, as readlink(2) gives.
      const target = encoder.encode(node.target).subarray(0, bufLength >>> 0)
      memory.bytes(buf, target.length).set(target)
      memory.setU32(used, target.length)
      return 0
    },
    path_remove_directory: (fd: number, path: number, length: number) => {
      const { dir, name } = lookupParent(directory(fd, RIGHT_PATH_REMOVE_DIRECTORY).node, memory.path(path, length))
      fs.removeDirectory(dir, name)
      return 0
    },
    path_rename: (fd: number, oldPath: number, oldLength: number, newFd: number, newPath: number, newLength: number) => {
      const from = lookupParent(directory(fd, RIGHT_PATH_RENAME_SOURCE).node, memory.path(oldPath, oldLength))
      const to = lookupParent(directory(newFd, RIGHT_PATH_RENAME_TARGET).node, memory.path(newPath, newLength))
      fs.rename(from.dir, from.name, from.trailingSlash, to.dir, to.name, to.trailingSlash)
      return 0
    },
    path_symlink: (oldPath: number, oldLength: number, fd: number, newPath: number, newLength: number) => {
      const target = memory.path(oldPath, oldLength)
      const { dir, name, trailingSlash } = lookupParent(directory(fd, RIGHT_PATH_SYMLINK).node, memory.path(newPath, newLength))
      fs.createSymlink(dir, name, trailingSlash, target)
      return 0
    },
    path_unlink_file: (fd: number, path: number, length: number) => {
      const { dir, name, trailingSlash } = lookupParent(directory(fd, RIGHT_PATH_UNLINK_FILE).node, memory.path(path, length))
      fs.unlink(dir, name, trailingSlash)
      return 0
    }
  }

  /** What path_open opens, creating it for O_CREAT. */
  function open (parent: DirectoryDescriptor, path: string, follow: boolean, oflags: number): Node {
    if ((oflags & OFLAGS_CREAT) === 0) {
      return lookup(parent.node, path, follow)
    }
    const { dir, name, trailingSlash } = lookupParent(parent.node, path)
    const found = name === '.' || name === '..' || dir.get(name) !== undefined
    if (!found) {
      // open("name/", O_CREAT) asks for a directory, which open cannot make.
      if (trailingSlash) {
        fail(ERRNO_ISDIR)
      }
      return fs.createFile(dir, name)
    }
    if ((oflags & OFLAGS_EXCL) !== 0) {
      fail(ERRNO_EXIST)
    }
    return lookup(parent.node, path, follow)
  }
}
