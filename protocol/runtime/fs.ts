/**
 * The in-memory filesystem behind the WASI host: inodes (files, directories,
 * symlinks), the changes a module can make to them, and the limits on its
 * size. Every failure throws the preview1 errno a POSIX program expects
 * (see `fail`). Deterministic: inode numbers count up from 1 in creation
 * order, timestamps come from the job's virtual clock, and a directory lists
 * its entries in the order they were added.
 */
import {
  ERRNO_BUSY, ERRNO_EXIST, ERRNO_INVAL, ERRNO_ISDIR, ERRNO_NAMETOOLONG, ERRNO_NOENT, ERRNO_NOSPC, ERRNO_NOTDIR,
  ERRNO_NOTEMPTY, ERRNO_PERM, ERRNO_ROFS, ERRNO_XDEV, FILETYPE_DIRECTORY, FILETYPE_REGULAR_FILE,
  FILETYPE_SYMBOLIC_LINK, fail
} from './wasi-abi.ts'

/** Bytes (file contents, names, symlink targets) a job's filesystem holds at most, unless the request says otherwise. */
export const DEFAULT_FILESYSTEM_BYTES = 64 * 1024 * 1024
/** Files, directories and symlinks at most, mounts included: past it, creating one fails with ENOSPC (as a disk out of inodes). */
export const MAX_INODES = 65_536
/** Longest name of a directory entry, in UTF-8 bytes (NAME_MAX). */
export const NAME_MAX = 255
/** Longest path a call may pass, and longest symlink target, in UTF-8 bytes (PATH_MAX). */
export const PATH_MAX = 4096

/** A mount, as its inodes see it: one device number each, so st_dev tells mounts apart. */
export interface Volume {
  dev: bigint
  writable: boolean
}

interface Entry {
  node: Node
  /** Position in the directory, for readdir cookies that survive entries being removed. */
  seq: number
}

/** One directory entry as readdir reports it. */
export interface Listed {
  name: string
  node: Node
  seq: number
}

abstract class Inode {
  readonly ino: bigint
  readonly volume: Volume
  /** Names that refer to this inode; 0 once it is removed. */
  links = 0
  atim: bigint
  mtim: bigint
  ctim: bigint

  constructor (ino: bigint, volume: Volume, now: bigint) {
    this.ino = ino
    this.volume = volume
    this.atim = now
    this.mtim = now
    this.ctim = now
  }
}

export class FileNode extends Inode {
  readonly kind = 'file'
  /** Holds `size` bytes, maybe more capacity. A seed's own array until the first change (`shared`). */
  data: Uint8Array
  size: number
  /** `data` belongs to the mount's seed tree and must be copied before any change. */
  shared: boolean
  /** Open descriptors: an unlinked file keeps its bytes (and its share of the limit) until the last one closes. */
  opens = 0

  constructor (ino: bigint, volume: Volume, now: bigint, seed: Uint8Array | undefined) {
    super(ino, volume, now)
    this.data = seed ?? new Uint8Array(0)
    this.size = this.data.length
    this.shared = seed !== undefined
  }
}

export class DirNode extends Inode {
  readonly kind = 'directory'
  /** Undefined for the top of the tree. */
  parent: DirNode | undefined
  /** Entries a nested mount hides, kept for exporting this mount's tree. */
  covered: Map<string, Node> | undefined
  readonly #entries = new Map<string, Entry>()
  #nextSeq = 0
  #listing: Listed[] | undefined

  constructor (ino: bigint, volume: Volume, now: bigint, parent: DirNode | undefined) {
    super(ino, volume, now)
    this.parent = parent
  }

  get entryCount (): number {
    return this.#entries.size
  }

  get (name: string): Node | undefined {
    return this.#entries.get(name)?.node
  }

  /** Adds or replaces `name`; a replaced entry moves to the end, as a new one. */
  set (name: string, node: Node): void {
    this.#entries.delete(name)
    this.#entries.set(name, { node, seq: this.#nextSeq++ })
    this.#listing = undefined
  }

  delete (name: string): void {
    this.#entries.delete(name)
    this.#listing = undefined
  }

  /** Entries in the order they were added (a Map keeps insertion order), so `seq` ascends. */
  listing (): readonly Listed[] {
    this.#listing ??= Array.from(this.#entries, ([name, { node, seq }]) => ({ name, node, seq }))
    return this.#listing
  }
}

export class SymlinkNode extends Inode {
  readonly kind = 'symlink'
  readonly target: string

  constructor (ino: bigint, volume: Volume, now: bigint, target: string) {
    super(ino, volume, now)
    this.target = target
  }
}

export type Node = FileNode | DirNode | SymlinkNode

export function filetype (node: Node): number {
  return node.kind === 'file' ? FILETYPE_REGULAR_FILE : node.kind === 'directory' ? FILETYPE_DIRECTORY : FILETYPE_SYMBOLIC_LINK
}

const encoder = new TextEncoder()

/**
 * The UTF-8 length of `text`; when it surely fits in `atMost` bytes, any
 * number up to `atMost` instead, which is all a limit check needs and saves
 * encoding short names. `atMost` 0 gives the exact length.
 */
export function utf8Length (text: string, atMost: number): number {
  return text.length * 3 <= atMost ? text.length : encoder.encode(text).length
}

export interface FsLimits {
  /** Bytes of file contents, entry names and symlink targets. */
  bytes: number
  inodes: number
}

export class MemoryFs {
  readonly #limits: FsLimits
  readonly #now: () => bigint
  #bytes = 0
  #inodes = 0
  #nextIno = 1n

  constructor (limits: FsLimits, now: () => bigint) {
    this.#limits = limits
    this.#now = now
  }

  /** A new inode, in no directory yet (newFile, newDirectory, newSymlink). */
  newFile (volume: Volume, seed?: Uint8Array): FileNode {
    const bytes = seed?.length ?? 0
    this.#reserve(bytes)
    const file = new FileNode(this.#allocate(), volume, this.#now(), seed)
    this.#bytes += bytes
    return file
  }

  newDirectory (volume: Volume, parent: DirNode | undefined): DirNode {
    return new DirNode(this.#allocate(), volume, this.#now(), parent)
  }

  newSymlink (volume: Volume, target: string): SymlinkNode {
    this.#reserve(target.length)
    const symlink = new SymlinkNode(this.#allocate(), volume, this.#now(), target)
    this.#bytes += target.length
    return symlink
  }

  /** Adds `node` to `dir` as `name` at setup, when mounts are built: no checks but space. */
  attach (dir: DirNode, name: string, node: Node): void {
    this.#reserve(name.length)
    this.#link(dir, name, node)
  }

  createFile (dir: DirNode, name: string): FileNode {
    this.#checkNew(dir, name)
    const file = this.newFile(dir.volume)
    this.#link(dir, name, file)
    return file
  }

  createDirectory (dir: DirNode, name: string): void {
    this.#checkNew(dir, name)
    this.#link(dir, name, this.newDirectory(dir.volume, dir))
  }

  createSymlink (dir: DirNode, name: string, trailingSlash: boolean, target: string): void {
    if (target === '') {
      fail(ERRNO_NOENT)
    }
    // It could never be followed: lookups refuse absolute targets.
    if (target.startsWith('/')) {
      fail(ERRNO_PERM)
    }
    if (utf8Length(target, PATH_MAX) > PATH_MAX) {
      fail(ERRNO_NAMETOOLONG)
    }
    this.#checkNew(dir, name, target.length)
    // "name/" names a directory, and a symlink is not one.
    if (trailingSlash) {
      fail(ERRNO_NOENT)
    }
    this.#link(dir, name, this.newSymlink(dir.volume, target))
  }

  /** A hard link: `node` gets a second name. */
  link (node: Node, dir: DirNode, name: string, trailingSlash: boolean): void {
    if (node.kind === 'directory') {
      fail(ERRNO_PERM)
    }
    this.#checkNew(dir, name)
    if (trailingSlash) {
      fail(ERRNO_NOENT)
    }
    if (node.volume !== dir.volume) {
      fail(ERRNO_XDEV)
    }
    this.#link(dir, name, node)
    node.ctim = this.#now()
  }

  unlink (dir: DirNode, name: string, trailingSlash: boolean): void {
    if (isDots(name)) {
      fail(ERRNO_ISDIR)
    }
    const node = existing(dir, name)
    if (node.kind === 'directory') {
      fail(ERRNO_ISDIR)
    }
    if (trailingSlash) {
      fail(ERRNO_NOTDIR)
    }
    this.#writable(dir)
    this.#unlink(dir, name, node)
  }

  removeDirectory (dir: DirNode, name: string): void {
    if (name === '.') {
      fail(ERRNO_INVAL)
    }
    if (name === '..') {
      fail(ERRNO_NOTEMPTY)
    }
    const node = existing(dir, name)
    if (node.kind !== 'directory') {
      fail(ERRNO_NOTDIR)
    }
    if (node.volume !== dir.volume) {
      fail(ERRNO_BUSY)
    }
    if (node.entryCount > 0) {
      fail(ERRNO_NOTEMPTY)
    }
    this.#writable(dir)
    this.#unlink(dir, name, node)
  }

  /** rename(2): replaces what `to` names, if the kinds allow it. */
  rename (from: DirNode, fromName: string, fromSlash: boolean, to: DirNode, toName: string, toSlash: boolean): void {
    if (isDots(fromName) || isDots(toName)) {
      fail(ERRNO_BUSY)
    }
    if (utf8Length(toName, NAME_MAX) > NAME_MAX) {
      fail(ERRNO_NAMETOOLONG)
    }
    const node = existing(from, fromName)
    if (node.kind !== 'directory' && (fromSlash || toSlash)) {
      fail(ERRNO_NOTDIR)
    }
    const replaced = to.get(toName)
    if (node.volume !== from.volume || (replaced !== undefined && replaced.volume !== to.volume)) {
      fail(ERRNO_BUSY)
    }
    if (from.volume !== to.volume) {
      fail(ERRNO_XDEV)
    }
    this.#writable(from)
    if (to.links === 0) {
      fail(ERRNO_NOENT)
    }
    this.#reserve(Math.max(0, toName.length - fromName.length))
    if (replaced === node) {
      return
    }
    if (node.kind === 'directory') {
      // A directory cannot move into itself or below itself.
      for (let up: DirNode | undefined = to; up !== undefined; up = up.parent) {
        if (up === node) {
          fail(ERRNO_INVAL)
        }
      }
      if (replaced !== undefined && replaced.kind !== 'directory') {
        fail(ERRNO_NOTDIR)
      }
      if (replaced !== undefined && replaced.entryCount > 0) {
        fail(ERRNO_NOTEMPTY)
      }
    } else if (replaced?.kind === 'directory') {
      fail(ERRNO_ISDIR)
    }
    if (replaced !== undefined) {
      this.#unlink(to, toName, replaced)
    }
    from.delete(fromName)
    to.set(toName, node)
    this.#bytes += toName.length - fromName.length
    if (node.kind === 'directory') {
      node.parent = to
    }
    const now = this.#now()
    from.mtim = from.ctim = to.mtim = to.ctim = node.ctim = now
  }

  /** Copies bytes from `position` into `into`; returns how many (0 at or past the end). */
  read (file: FileNode, position: number, into: Uint8Array): number {
    const count = Math.max(0, Math.min(into.length, file.size - position))
    into.set(file.data.subarray(position, position + count))
    return count
  }

  /** Writes all of `bytes` at `position`, growing the file (zero-filled) as needed. */
  write (file: FileNode, position: number, bytes: Uint8Array): void {
    this.#writable(file)
    const end = position + bytes.length
    if (end > file.size) {
      this.#reserve(end - file.size)
      this.#own(file, end)
      this.#bytes += end - file.size
      file.size = end
    } else {
      this.#own(file, file.size)
    }
    file.data.set(bytes, position)
    file.mtim = file.ctim = this.#now()
  }

  /** Truncates or zero-extends `file` to `size` bytes. */
  resize (file: FileNode, size: number): void {
    this.#writable(file)
    if (size > file.size) {
      this.#reserve(size - file.size)
      this.#own(file, size)
    } else if (!file.shared) {
      // Bytes past the end must read as zeros if the file grows again.
      file.data.fill(0, size, file.size)
    }
    this.#bytes += size - file.size
    file.size = size
    file.mtim = file.ctim = this.#now()
  }

  setTimes (node: Node, atim: bigint | undefined, mtim: bigint | undefined): void {
    this.#writable(node)
    if (atim !== undefined) {
      node.atim = atim
    }
    if (mtim !== undefined) {
      node.mtim = mtim
    }
    node.ctim = this.#now()
  }

  /** Counts an open descriptor on `file`; `close` gives it back. */
  open (file: FileNode): void {
    file.opens++
  }

  close (file: FileNode): void {
    file.opens--
    this.#release(file)
  }

  #allocate (): bigint {
    if (this.#inodes >= this.#limits.inodes) {
      fail(ERRNO_NOSPC)
    }
    this.#inodes++
    return this.#nextIno++
  }

  #reserve (bytes: number): void {
    if (this.#bytes + bytes > this.#limits.bytes) {
      fail(ERRNO_NOSPC)
    }
  }

  /** Gives `file` a private buffer of at least `capacity` bytes: copy-on-write for seeds, amortized growth otherwise. */
  #own (file: FileNode, capacity: number): void {
    if (!file.shared && file.data.length >= capacity) {
      return
    }
    const grown = file.shared ? capacity : Math.max(capacity, Math.ceil(file.data.length * 1.5), 256)
    const data = new Uint8Array(grown)
    data.set(file.data.subarray(0, file.size))
    file.data = data
    file.shared = false
  }

  #writable (node: Node): void {
    if (!node.volume.writable) {
      fail(ERRNO_ROFS)
    }
  }

  /** Checks that `name` (and `bytes` more, a symlink's target) can be created in `dir`. */
  #checkNew (dir: DirNode, name: string, bytes = 0): void {
    if (isDots(name) || dir.get(name) !== undefined) {
      fail(ERRNO_EXIST)
    }
    if (utf8Length(name, NAME_MAX) > NAME_MAX) {
      fail(ERRNO_NAMETOOLONG)
    }
    this.#writable(dir)
    // A removed directory that is still open takes no new entries.
    if (dir.links === 0) {
      fail(ERRNO_NOENT)
    }
    this.#reserve(name.length + bytes)
  }

  /** Names cost space too, as on a disk: otherwise hard links alone could fill the heap. */
  #link (dir: DirNode, name: string, node: Node): void {
    dir.set(name, node)
    node.links++
    this.#bytes += name.length
    dir.mtim = dir.ctim = this.#now()
  }

  #unlink (dir: DirNode, name: string, node: Node): void {
    dir.delete(name)
    node.links--
    this.#bytes -= name.length
    dir.mtim = dir.ctim = node.ctim = this.#now()
    if (node.kind === 'file') {
      this.#release(node)
    } else if (node.links === 0) {
      this.#inodes--
      this.#bytes -= node.kind === 'symlink' ? node.target.length : 0
    }
  }

  /** Frees a file's bytes and inode once no name and no descriptor refers to it. */
  #release (file: FileNode): void {
    if (file.links === 0 && file.opens === 0) {
      this.#bytes -= file.size
      this.#inodes--
      file.data = new Uint8Array(0)
      file.size = 0
    }
  }
}

function isDots (name: string): boolean {
  return name === '.' || name === '..'
}

function existing (dir: DirNode, name: string): Node {
  const node = dir.get(name)
  if (node === undefined) {
    fail(ERRNO_NOENT)
  }
  return node
}
