/**
 * Local folders and files as the plain trees jobs mount, and back: what
 * `wasmesh run --mount` adds to the store and `--out-dir` writes out.
 */
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { CID } from 'multiformats/cid'
import type { MountOption, MountTree, TreeDirectory, TreeEntry } from '../../node/index.ts'
import { UsageError } from './options.ts'

/**
 * Parses one `--mount` value: `/out` (empty, writable), `/data=<dir|file|CID>`
 * (read-only) or `/work=<dir|file|CID>:rw` (writable, seeded). A local path
 * wins over a CID of the same spelling; a file is seen inside the mount
 * under its own name.
 */
export async function parseMount (value: string): Promise<MountOption> {
  const eq = value.indexOf('=')
  if (eq < 0) {
    return { path: value, writable: true }
  }
  const path = value.slice(0, eq)
  let source = value.slice(eq + 1)
  const writable = source.endsWith(':rw')
  if (writable) {
    source = source.slice(0, -':rw'.length)
  }
  if (source === '') {
    throw new UsageError(`--mount ${value}: expected PATH, PATH=SOURCE or PATH=SOURCE:rw`)
  }
  const local = await lstat(source).catch(() => undefined)
  if (local != null) {
    const tree = await readLocalTree(source)
    return { path, from: tree.type === 'directory' ? tree : { type: 'directory', entries: { [basename(source)]: tree } }, writable }
  }
  try {
    return { path, from: CID.parse(source), writable }
  } catch {
    throw new UsageError(`--mount ${value}: ${source} is neither a local file or folder nor a CID`)
  }
}

/** Reads a local file, folder (recursively) or symlink as a tree. */
export async function readLocalTree (path: string): Promise<TreeEntry> {
  const info = await lstat(path)
  if (info.isSymbolicLink()) {
    return { type: 'symlink', target: await readlink(path) }
  }
  if (info.isFile()) {
    return { type: 'file', content: await readFile(path) }
  }
  if (!info.isDirectory()) {
    throw new UsageError(`${path} is neither a file, a folder nor a symlink: it cannot be mounted`)
  }
  const entries: TreeDirectory['entries'] = {}
  for (const name of await readdir(path)) {
    entries[name] = await readLocalTree(join(path, name))
  }
  return { type: 'directory', entries }
}

/** The folder under `--out-dir` a mount's final tree goes to: its path without the leading slash, `/` as `_`; the root mount is `root`. */
export function outFolderName (mountPath: string): string {
  return mountPath === '/' ? 'root' : mountPath.slice(1).replaceAll('/', '_')
}

/** Writes each writable mount's final tree into its own folder under `outDir`. */
export async function writeMountTrees (mounts: readonly MountTree[], outDir: string): Promise<void> {
  for (const mount of mounts) {
    await writeTree(mount.tree, join(outDir, outFolderName(mount.path)))
  }
}

/** Writes a tree at `path`: a file, a symlink, or a folder with everything in it. */
export async function writeTree (entry: TreeEntry, path: string): Promise<void> {
  if (entry.type === 'file') {
    await writeFile(path, entry.content)
  } else if (entry.type === 'symlink') {
    await symlink(entry.target, path)
  } else {
    await mkdir(path, { recursive: true })
    for (const [name, child] of Object.entries(entry.entries)) {
      await writeTree(child, join(path, name))
    }
  }
}
