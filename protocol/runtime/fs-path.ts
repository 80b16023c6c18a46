/**
 * Path lookup relative to a directory descriptor, the way WASI confines it:
 * an absolute path, a `..` above the starting directory, or a symlink that
 * leads there (or is absolute) fails with ENOTCAPABLE, so a module only ever
 * reaches what it was handed. Symlinks are followed at most 40 times (ELOOP).
 */
import { ERRNO_LOOP, ERRNO_NOENT, ERRNO_NOTCAPABLE, ERRNO_NOTDIR, fail } from './wasi-abi.ts'
import type { DirNode, Node } from './fs.ts'

const MAX_SYMLINK_FOLLOWS = 40

interface SplitPath {
  /** Non-empty components, `.` and `..` included. */
  components: string[]
  /** "a/" must name a directory (POSIX). */
  trailingSlash: boolean
}

/** Splits a relative path; absolute ones are refused and an empty one names nothing. */
function splitPath (path: string): SplitPath {
  if (path === '') {
    fail(ERRNO_NOENT)
  }
  if (path.startsWith('/')) {
    fail(ERRNO_NOTCAPABLE)
  }
  return { components: path.split('/').filter(part => part !== ''), trailingSlash: path.endsWith('/') }
}

/**
 * Finds what `path` names from `base`. `follow` says whether a symlink in
 * the last position is followed (LOOKUPFLAGS_SYMLINK_FOLLOW); ones before it
 * always are, and so is the last one when the path ends in a slash.
 */
export function lookup (base: DirNode, path: string, follow: boolean): Node {
  const { components, trailingSlash } = splitPath(path)
  return walk(base, components, follow, trailingSlash)
}

export interface ParentLookup {
  dir: DirNode
  /** The last component, possibly `.` or `..`: callers that create or remove entries refuse those. */
  name: string
  trailingSlash: boolean
}

/** Finds the directory that holds (or would hold) the last component of `path`. */
export function lookupParent (base: DirNode, path: string): ParentLookup {
  const { components, trailingSlash } = splitPath(path)
  const name = components.pop() ?? '.'
  const dir = components.length === 0 ? base : walk(base, components, true, true)
  // walk with mustBeDirectory returns a directory or throws.
  return { dir: dir as DirNode, name, trailingSlash }
}

function walk (base: DirNode, components: string[], followLast: boolean, mustBeDirectory: boolean): Node {
  // The directories from base down to where the walk is: `..` pops one, and never base itself.
  const stack: DirNode[] = [base]
  // Components still to visit, last first; a followed symlink pushes its target's.
  const pending = components.reverse()
  let follows = 0
  let directoryOnly = mustBeDirectory
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    const last = pending.length === 0
    const dir = stack[stack.length - 1] as DirNode
    if (name === '.') {
      continue
    }
    if (name === '..') {
      if (stack.length === 1) {
        fail(ERRNO_NOTCAPABLE)
      }
      stack.pop()
      continue
    }
    // A removed directory that is still open has no entries to find.
    const node = dir.links === 0 ? undefined : dir.get(name)
    if (node === undefined) {
      fail(ERRNO_NOENT)
    }
    if (node.kind === 'symlink' && (!last || followLast || directoryOnly)) {
      if (++follows > MAX_SYMLINK_FOLLOWS) {
        fail(ERRNO_LOOP)
      }
      const target = splitPath(node.target)
      if (last && target.trailingSlash) {
        directoryOnly = true
      }
      pending.push(...target.components.reverse())
      continue
    }
    if (node.kind === 'directory') {
      stack.push(node)
      continue
    }
    if (!last || directoryOnly) {
      fail(ERRNO_NOTDIR)
    }
    return node
  }
  return stack[stack.length - 1] as DirNode
}
