/**
 * What the groups of WASI calls (wasi-*-calls.ts) share: the state of one
 * run, and how they write the structs preview1 defines.
 */
import type { FdTable } from './fd-table.ts'
import { filetype, utf8Length } from './fs.ts'
import type { MemoryFs, Node } from './fs.ts'
import { ERRNO_INVAL, FILESTAT_SIZE, FILETYPE_UNKNOWN, FSTFLAGS_ATIM, FSTFLAGS_ATIM_NOW, FSTFLAGS_MTIM, FSTFLAGS_MTIM_NOW, fail } from './wasi-abi.ts'
import type { GuestMemory } from './wasi-memory.ts'
import type { Stdio } from './wasi-stdio.ts'
import type { VirtualClock } from './virtual-clock.ts'

/** A host function as the module calls it: numbers and bigints in, an errno out. */
export type Syscall = (...args: never[]) => number

export interface WasiHost {
  memory: GuestMemory
  fds: FdTable
  /** Empty when the job has no mounts: then no descriptor can reach it. */
  fs: MemoryFs
  stdio: Stdio
  clock: VirtualClock
}

/** Writes a filestat; a stream (no node) is a zeroed stat of unknown type. */
export function writeFilestat (memory: GuestMemory, ptr: number, node: Node | undefined): void {
  memory.bytes(ptr, FILESTAT_SIZE).fill(0)
  if (node === undefined) {
    memory.setU8(ptr + 16, FILETYPE_UNKNOWN)
    return
  }
  memory.setU64(ptr, node.volume.dev)
  memory.setU64(ptr + 8, node.ino)
  memory.setU8(ptr + 16, filetype(node))
  // Directories report one link, as btrfs does: tools then never infer subdirectory counts from it.
  memory.setU64(ptr + 24, BigInt(node.kind === 'directory' ? 1 : node.links))
  memory.setU64(ptr + 32, BigInt(node.kind === 'file' ? node.size : node.kind === 'symlink' ? utf8Length(node.target, 0) : 0))
  memory.setU64(ptr + 40, node.atim)
  memory.setU64(ptr + 48, node.mtim)
  memory.setU64(ptr + 56, node.ctim)
}

/** fd_filestat_set_times and path_filestat_set_times: a time and its _NOW flag together are EINVAL. */
export function setTimes (host: WasiHost, node: Node, atim: bigint, mtim: bigint, fstflags: number): void {
  const both = (set: number, now: number): boolean => (fstflags & set) !== 0 && (fstflags & now) !== 0
  if ((fstflags & ~0xf) !== 0 || both(FSTFLAGS_ATIM, FSTFLAGS_ATIM_NOW) || both(FSTFLAGS_MTIM, FSTFLAGS_MTIM_NOW)) {
    fail(ERRNO_INVAL)
  }
  const now = host.clock.now()
  const pick = (value: bigint, set: number, setNow: number): bigint | undefined =>
    (fstflags & set) !== 0 ? BigInt.asUintN(64, value) : (fstflags & setNow) !== 0 ? now : undefined
  host.fs.setTimes(node, pick(atim, FSTFLAGS_ATIM, FSTFLAGS_ATIM_NOW), pick(mtim, FSTFLAGS_MTIM, FSTFLAGS_MTIM_NOW))
}
