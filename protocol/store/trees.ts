/**
 * Directory trees (the executor's plain `TreeEntry`) to and from UnixFS DAGs.
 * Files are stored as `addBytes` stores them (CIDv1, raw leaves); a
 * directory is one dag-pb node whose links are sorted by name, so the same
 * tree always gives the same CID: two honest workers that end with the same
 * files sign the same CID. Sharded (HAMT) directories are not read or written.
 */
import * as dagPb from '@ipld/dag-pb'
import { unixfs } from '@helia/unixfs'
import { MemoryBlockstore } from 'blockstore-core'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { concat } from 'uint8arrays/concat'
import { toString as bytesToString } from 'uint8arrays/to-string'
import { fromString as stringToBytes } from 'uint8arrays/from-string'
import { FilesystemLimitError, InvalidTreeError } from '../errors.ts'
import type { TreeDirectory, TreeEntry } from '../runtime/executor.ts'

/** What reading and writing trees needs of the content store. */
export interface TreeBlocks {
  /** Adds a file's bytes as a UnixFS file. */
  addBytes: (bytes: Uint8Array, signal?: AbortSignal) => Promise<CID>
  /** Reads a whole file, at most `maxBytes`. */
  cat: (cid: CID, maxBytes: number, signal: AbortSignal) => Promise<Uint8Array>
  getBlock: (cid: CID, signal: AbortSignal) => Promise<Uint8Array>
  putBlock: (cid: CID, bytes: Uint8Array, signal?: AbortSignal) => Promise<void>
}

export interface TreeLimits {
  /** File contents plus one per character of each name and symlink target, as the job's filesystem counts them. */
  maxBytes: number
  /** Files, directories and symlinks. */
  maxEntries: number
}

/** Stores a tree and returns its root CID. */
export async function addTree (entry: TreeEntry, blocks: TreeBlocks, signal?: AbortSignal): Promise<CID> {
  return (await addEntry(entry, blocks, signal)).cid
}

/**
 * The CID `addTree` gives a tree, computed in memory without a store: what
 * `wasmesh verify --out-dir` checks files written out against.
 */
export async function treeCid (tree: TreeEntry, signal?: AbortSignal): Promise<CID> {
  const blockstore = new MemoryBlockstore()
  const fs = unixfs({ blockstore })
  const getBlock = async (cid: CID): Promise<Uint8Array> => {
    const chunks: Uint8Array[] = []
    for await (const chunk of blockstore.get(cid)) {
      chunks.push(chunk)
    }
    return concat(chunks)
  }
  return addTree(tree, {
    addBytes: async (bytes, addSignal) => fs.addBytes(bytes, { signal: addSignal }),
    cat: async cid => getBlock(cid),
    getBlock,
    putBlock: async (cid, bytes) => { await blockstore.put(cid, bytes) }
  }, signal)
}

async function addEntry (entry: TreeEntry, blocks: TreeBlocks, signal?: AbortSignal): Promise<{ cid: CID, dagSize: number }> {
  if (entry.type === 'file') {
    const cid = await blocks.addBytes(entry.content, signal)
    if (cid.code === raw.code) {
      return { cid, dagSize: entry.content.byteLength }
    }
    const root = await blocks.getBlock(cid, signal ?? new AbortController().signal)
    return { cid, dagSize: root.byteLength + dagPb.decode(root).Links.reduce((sum, link) => sum + (link.Tsize ?? 0), 0) }
  }
  if (entry.type === 'symlink') {
    return putNode({ Data: new UnixFS({ type: 'symlink', data: stringToBytes(entry.target) }).marshal(), Links: [] }, 0, blocks, signal)
  }
  const links: dagPb.PBLink[] = []
  let childrenSize = 0
  for (const name of Object.keys(entry.entries).sort(byUtf8)) {
    const child = await addEntry(entry.entries[name] as TreeEntry, blocks, signal)
    links.push({ Name: name, Hash: child.cid, Tsize: child.dagSize })
    childrenSize += child.dagSize
  }
  return putNode({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: links }, childrenSize, blocks, signal)
}

async function putNode (node: dagPb.PBNode, childrenSize: number, blocks: TreeBlocks, signal?: AbortSignal): Promise<{ cid: CID, dagSize: number }> {
  const bytes = dagPb.encode(node)
  const cid = CID.createV1(dagPb.code, await sha256.digest(bytes))
  await blocks.putBlock(cid, bytes, signal)
  return { cid, dagSize: bytes.byteLength + childrenSize }
}

/** dag-pb orders links by the bytes of their names. */
function byUtf8 (a: string, b: string): number {
  const x = stringToBytes(a)
  const y = stringToBytes(b)
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) {
      return (x[i] as number) - (y[i] as number)
    }
  }
  return x.length - y.length
}

/**
 * Reads the tree a CID names, within `limits` (counted as it goes, so a
 * tree too big is refused before it is all fetched). A UnixFS file becomes
 * a directory holding it under its CID's name, so every mount is a directory.
 */
export async function readTree (cid: CID, blocks: TreeBlocks, limits: TreeLimits, signal: AbortSignal): Promise<TreeDirectory> {
  const budget = { bytes: limits.maxBytes, entries: limits.maxEntries, limits }
  const root = await readEntry(cid, blocks, budget, signal)
  if (root.type === 'directory') {
    return root
  }
  spend(budget, cid.toString().length, 1)
  return { type: 'directory', entries: { [cid.toString()]: root } }
}

/** Reads the file, directory or symlink a CID names, as it is, within `limits`. */
export async function readTreeEntry (cid: CID, blocks: TreeBlocks, limits: TreeLimits, signal: AbortSignal): Promise<TreeEntry> {
  return readEntry(cid, blocks, { bytes: limits.maxBytes, entries: limits.maxEntries, limits }, signal)
}

interface Budget { bytes: number, entries: number, limits: TreeLimits }

function spend (budget: Budget, bytes: number, entries: number): void {
  budget.bytes -= bytes
  budget.entries -= entries
  if (budget.bytes < 0) {
    throw new FilesystemLimitError(`the tree holds more than the ${budget.limits.maxBytes} bytes a job's filesystem may hold`)
  }
  if (budget.entries < 0) {
    throw new FilesystemLimitError(`the tree holds more than the ${budget.limits.maxEntries} files, directories and symlinks a job may have`)
  }
}

async function readEntry (cid: CID, blocks: TreeBlocks, budget: Budget, signal: AbortSignal): Promise<TreeEntry> {
  spend(budget, 0, 1)
  if (cid.code === raw.code) {
    const content = await blocks.cat(cid, budget.bytes, signal)
    spend(budget, content.byteLength, 0)
    return { type: 'file', content }
  }
  if (cid.code !== dagPb.code) {
    throw new InvalidTreeError(`${cid.toString()} is not UnixFS (codec 0x${cid.code.toString(16)}): only UnixFS files and directories can be mounted`)
  }
  const node = dagPb.decode(await blocks.getBlock(cid, signal))
  let data: UnixFS
  try {
    data = UnixFS.unmarshal(node.Data ?? new Uint8Array(0))
  } catch (err) {
    throw new InvalidTreeError(`${cid.toString()} is a dag-pb node without UnixFS data`, { cause: err })
  }
  switch (data.type) {
    case 'file':
    case 'raw': {
      const content = await blocks.cat(cid, budget.bytes, signal)
      spend(budget, content.byteLength, 0)
      return { type: 'file', content }
    }
    case 'symlink': {
      const target = bytesToString(data.data ?? new Uint8Array(0))
      spend(budget, target.length, 0)
      return { type: 'symlink', target }
    }
    case 'directory': {
      const entries: Record<string, TreeEntry> = {}
      for (const link of node.Links) {
        const name = link.Name ?? ''
        if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
          throw new InvalidTreeError(`${cid.toString()} holds an entry named ${JSON.stringify(name)}, which is not a file name`)
        }
        spend(budget, name.length, 0)
        // defined, not assigned: a file named __proto__ is a file, not the object's prototype
        Object.defineProperty(entries, name, { value: await readEntry(link.Hash, blocks, budget, signal), enumerable: true, writable: true, configurable: true })
      }
      return { type: 'directory', entries }
    }
    default:
      throw new InvalidTreeError(`${cid.toString()} is a UnixFS ${data.type}: only plain files, directories and symlinks can be mounted (sharded directories are not supported)`)
  }
}
