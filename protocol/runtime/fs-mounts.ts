/**
 * Turns the caller's mounts (plain trees) into one MemoryFs namespace, and
 * writable mounts back into trees after the run. Mounts are grafted at their
 * paths like Linux mounts: each is its own device (st_dev), renames and hard
 * links across them fail with EXDEV, and a mount point cannot be removed
 * (EBUSY). Each mount is also a WASI preopen, in path order from fd 3.
 */
import { FilesystemLimitError, InvalidMountError } from '../errors.ts'
import type { Mount, MountResult, TreeDirectory, TreeEntry } from './executor.ts'
import { MAX_INODES, MemoryFs, NAME_MAX, PATH_MAX, utf8Length } from './fs.ts'
import type { DirNode, FileNode, Node, Volume } from './fs.ts'
import { formatMiB } from './prepare.ts'

/** Mounts a job may have: each is a descriptor, and they share the descriptor limit. */
export const MAX_MOUNTS = 64

export interface Preopen {
  /** The guest path, reported by fd_prestat_dir_name. */
  path: string
  dir: DirNode
}

export interface MountedFs {
  fs: MemoryFs
  preopens: Preopen[]
  /** The final trees of the writable mounts, in the caller's order. */
  results: () => MountResult[]
}

/** Checks and builds `mounts`; throws InvalidMountError or FilesystemLimitError before anything runs. */
export function mountAll (mounts: readonly Mount[], bytesLimit: number, now: () => bigint): MountedFs {
  if (mounts.length > MAX_MOUNTS) {
    throw new InvalidMountError(`${mounts.length} mounts, more than the ${MAX_MOUNTS} a job may have`)
  }
  let bytes = 0
  let inodes = 1
  const paths = new Set<string>()
  for (const mount of mounts) {
    checkMountPath(mount, paths)
    const size = measure(mount)
    // Plus, at most, a directory for each component on the way to the mount point.
    bytes += size.bytes + mount.path.length
    inodes += size.inodes + mount.path.split('/').length
  }
  if (bytes > bytesLimit) {
    throw new FilesystemLimitError(`the mounts hold ${formatMiB(bytes)} MiB (files, names and symlink targets), more than the job's filesystem limit of ${formatMiB(bytesLimit)} MiB`)
  }
  if (inodes > MAX_INODES) {
    throw new FilesystemLimitError(`the mounts hold ${inodes} files, directories and symlinks, more than the ${MAX_INODES} a job may have`)
  }

  const fs = new MemoryFs({ bytes: bytesLimit, inodes: MAX_INODES }, now)
  // Parents before children: a path sorts before every path it is a prefix of.
  const order = mounts.map((mount, index) => ({ mount, index })).sort((a, b) => a.mount.path < b.mount.path ? -1 : 1)
  const roots: DirNode[] = []
  // Directories no mount provides: the path down to a nested mount point.
  const synthetic: Volume = { dev: 0n, writable: false }
  let root: DirNode | undefined
  const preopens: Preopen[] = []
  order.forEach(({ mount, index }, position) => {
    const dir = fs.newDirectory({ dev: BigInt(position + 1), writable: mount.writable }, undefined)
    // Each root counts as linked: only removed directories have none.
    dir.links = 1
    roots[index] = dir
    if (mount.path === '/') {
      root = dir
    } else {
      if (root === undefined) {
        root = fs.newDirectory(synthetic, undefined)
        root.links = 1
      }
      graft(fs, root, mount.path, dir, synthetic)
    }
    seed(fs, dir, mount.tree)
    preopens.push({ path: mount.path, dir })
  })

  return {
    fs,
    preopens,
    results: () => mounts.flatMap((mount, index) => {
      const dir = roots[index] as DirNode
      return mount.writable ? [{ path: mount.path, tree: exportTree(dir, dir.volume) }] : []
    })
  }
}

/** Every ArrayBuffer the trees' files use, once each, to transfer them instead of copying. */
export function treeBuffers (results: readonly MountResult[]): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>()
  const stack: TreeDirectory[] = results.map(result => result.tree)
  for (let dir = stack.pop(); dir !== undefined; dir = stack.pop()) {
    for (const entry of Object.values(dir.entries)) {
      if (entry.type === 'directory') {
        stack.push(entry)
      } else if (entry.type === 'file' && entry.content.buffer instanceof ArrayBuffer) {
        buffers.add(entry.content.buffer)
      }
    }
  }
  return [...buffers]
}

function checkMountPath (mount: Mount, seen: Set<string>): void {
  const { path } = mount
  const normal = typeof path === 'string' && (path === '/' || (path.startsWith('/') && path.split('/').slice(1).every(validName)))
  if (!normal || utf8Length(path, PATH_MAX) > PATH_MAX) {
    throw new InvalidMountError(`mount path ${JSON.stringify(path)} is not a normalized absolute path such as "/" or "/data"`)
  }
  if (seen.has(path)) {
    throw new InvalidMountError(`two mounts at ${path}`)
  }
  seen.add(path)
  if (typeof mount.writable !== 'boolean') {
    throw new InvalidMountError(`the mount at ${path} does not say whether it is writable`)
  }
}

function validName (name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0') && utf8Length(name, NAME_MAX) <= NAME_MAX
}

/** Walks a mount's tree without recursion (trees may be deep), checking its shape and counting what it holds. */
function measure (mount: Mount): { bytes: number, inodes: number } {
  let bytes = 0
  let inodes = 1
  const where = `the mount at ${mount.path}`
  if (!isDirectory(mount.tree)) {
    throw new InvalidMountError(`${where}: its tree is not a directory`)
  }
  // Structured clone keeps cycles: refuse a directory met twice rather than loop.
  const seen = new Set<TreeDirectory>([mount.tree])
  const stack: TreeDirectory[] = [mount.tree]
  for (let dir = stack.pop(); dir !== undefined; dir = stack.pop()) {
    for (const [name, entry] of Object.entries(dir.entries)) {
      if (!validName(name)) {
        throw new InvalidMountError(`${where}: ${JSON.stringify(name)} is not a valid file name`)
      }
      inodes++
      bytes += name.length
      if (isDirectory(entry)) {
        if (seen.has(entry)) {
          throw new InvalidMountError(`${where}: directory ${JSON.stringify(name)} appears twice in the tree`)
        }
        seen.add(entry)
        stack.push(entry)
      } else if (entry?.type === 'file' && entry.content instanceof Uint8Array) {
        bytes += entry.content.length
      } else if (entry?.type === 'symlink' && typeof entry.target === 'string' && entry.target !== '' && !entry.target.includes('\0') && utf8Length(entry.target, PATH_MAX) <= PATH_MAX) {
        // Absolute or escaping targets are allowed here; following them is refused.
        bytes += entry.target.length
      } else {
        throw new InvalidMountError(`${where}: ${JSON.stringify(name)} is not a file with Uint8Array content, a directory or a symlink with a target`)
      }
    }
  }
  return { bytes, inodes }
}

function isDirectory (entry: TreeEntry | undefined): entry is TreeDirectory {
  return entry?.type === 'directory' && typeof entry.entries === 'object' && entry.entries !== null
}

/** Places `dir` at `path` under `root`, making the directories on the way that no mount provides. */
function graft (fs: MemoryFs, root: DirNode, path: string, dir: DirNode, synthetic: Volume): void {
  const names = path.split('/').slice(1)
  const last = names.pop() as string
  let parent = root
  for (const name of names) {
    let next = parent.get(name)
    if (next === undefined) {
      next = fs.newDirectory(synthetic, parent)
      fs.attach(parent, name, next)
    }
    if (next.kind !== 'directory') {
      throw new InvalidMountError(`cannot mount at ${path}: ${name} is a ${next.kind} in the mount above it`)
    }
    parent = next
  }
  const covered = parent.get(last)
  if (covered !== undefined) {
    if (covered.kind !== 'directory') {
      throw new InvalidMountError(`cannot mount at ${path}: it is a ${covered.kind} in the mount above it`)
    }
    parent.covered ??= new Map()
    parent.covered.set(last, covered)
  }
  parent.set(last, dir)
  dir.parent = parent
}

/**
 * Builds a seed tree's inodes under `into` breadth-first, each directory in
 * name order, so inode numbers follow from the tree alone. File bytes stay
 * the seed's until written.
 */
function seed (fs: MemoryFs, into: DirNode, tree: TreeDirectory): void {
  const queue: Array<[DirNode, TreeDirectory]> = [[into, tree]]
  for (let i = 0; i < queue.length; i++) {
    const [dir, source] = queue[i] as [DirNode, TreeDirectory]
    for (const name of Object.keys(source.entries).sort()) {
      const entry = source.entries[name] as TreeEntry
      let node: Node
      if (entry.type === 'directory') {
        node = fs.newDirectory(dir.volume, dir)
        queue.push([node, entry])
      } else if (entry.type === 'file') {
        node = fs.newFile(dir.volume, entry.content)
      } else {
        node = fs.newSymlink(dir.volume, entry.target)
      }
      fs.attach(dir, name, node)
    }
  }
}

/** The tree of `volume` from `root`: nested mounts are left out, and what they cover is put back. */
function exportTree (root: DirNode, volume: Volume): TreeDirectory {
  // Hard links share one array, so it is transferred once.
  const contents = new Map<FileNode, Uint8Array>()
  const top: TreeDirectory = { type: 'directory', entries: {} }
  const stack: Array<[DirNode, TreeDirectory]> = [[root, top]]
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [dir, out] = next
    const entries: Array<[string, TreeEntry]> = []
    for (const { name, node: found } of dir.listing()) {
      const node = found.volume === volume ? found : dir.covered?.get(name)
      if (node === undefined) {
        continue
      }
      if (node.kind === 'directory') {
        const child: TreeDirectory = { type: 'directory', entries: {} }
        entries.push([name, child])
        stack.push([node, child])
      } else if (node.kind === 'file') {
        let content = contents.get(node)
        if (content === undefined) {
          // A seed untouched keeps its own array; a changed file gets an exact copy, not its spare capacity.
          content = node.shared && node.size === node.data.length ? node.data : node.data.slice(0, node.size)
          contents.set(node, content)
        }
        entries.push([name, { type: 'file', content }])
      } else {
        entries.push([name, { type: 'symlink', target: node.target }])
      }
    }
    // fromEntries defines own properties, so even a file named "__proto__" is an ordinary entry.
    out.entries = Object.fromEntries(entries)
  }
  return top
}
