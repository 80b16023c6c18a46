import * as dagPb from '@ipld/dag-pb'
import { unixfs, type UnixFS } from '@helia/unixfs'
import { concat } from 'uint8arrays/concat'
import { ContentFetchError, InputTooLargeError, WasmeshError } from '../errors.ts'
import { addTree, readTree, readTreeEntry, type TreeBlocks, type TreeLimits } from './trees.ts'
import type { TreeDirectory, TreeEntry } from '../runtime/executor.ts'
import type { Helia } from '@helia/interface'
import type { CID } from 'multiformats/cid'

export interface GetContentOptions {
  signal: AbortSignal
  /** Refuse content larger than this, without downloading the rest. */
  maxBytes: number
  /** What the content is, for error messages: "module", "input"… */
  what: string
}

/**
 * Modules, inputs and large outputs, named by CID. Content is stored as
 * UnixFS files (CIDv1, raw leaves), so a module's CID is the one
 * `ipfs add --cid-version 1` gives, and every block fetched over bitswap is
 * checked against its hash before it is used.
 */
/** What ContentStore needs of the blockstore it gave Helia. */
export type LocalBlocks = Pick<Helia['blockstore'], 'has' | 'get' | 'delete'>

/** Times `blocks` asks for one block before it gives up. */
const BLOCK_ATTEMPTS = 4
/** Blocks of one DAG asked for at once when it is walked. */
const BLOCK_WINDOW = 16

export class ContentStore {
  private readonly helia: Helia
  private readonly fs: UnixFS
  /** The blockstore under Helia's: deleting through Helia's also asks content routers, and we run none. */
  private readonly local: LocalBlocks

  constructor (helia: Helia, local: LocalBlocks) {
    this.helia = helia
    this.local = local
    this.fs = unixfs(helia)
  }

  async add (bytes: Uint8Array, signal?: AbortSignal): Promise<CID> {
    return this.fs.addBytes(bytes, { signal })
  }

  /**
   * Deletes the content's blocks from our blockstore (its root, the nodes
   * below it and their raw leaves), without asking the network for any
   * block we no longer have. A worker uses it for outputs once they have
   * been fetched: they are the requester's to keep, not ours.
   */
  async remove (cid: CID, signal?: AbortSignal, keep?: ReadonlySet<string>): Promise<void> {
    const blockstore = this.local
    const pending = [cid]
    while (pending.length > 0) {
      const next = pending.pop() as CID
      if (keep?.has(next.toString()) === true || !await blockstore.has(next, { signal })) {
        continue
      }
      if (next.code === dagPb.code) {
        const chunks: Uint8Array[] = []
        for await (const chunk of blockstore.get(next, { signal })) {
          chunks.push(chunk)
        }
        pending.push(...dagPb.decode(concat(chunks)).Links.map(link => link.Hash))
      }
      await blockstore.delete(next, { signal })
    }
  }

  /**
   * Every block of the DAG under `cid` (UnixFS: dag-pb nodes and raw
   * leaves), in the order they arrive. With `localOnly`, from our own
   * blockstore only (a missing block throws ContentFetchError); else from
   * here or over bitswap, where Helia checks each block against its CID
   * before it is stored or yielded. Up to BLOCK_WINDOW blocks are asked for
   * at once: one at a time, a holder pulling 100 MiB waited a round trip per
   * block.
   */
  async * blocks (cid: CID, options: { signal: AbortSignal, localOnly?: boolean }): AsyncGenerator<{ cid: CID, bytes: Uint8Array }> {
    type Read = { slot: number, cid: CID, bytes?: Uint8Array, error?: unknown }
    const read = async (slot: number, next: CID): Promise<Read> => {
      try {
        return { slot, cid: next, bytes: options.localOnly === true ? await this.localBlock(next, options.signal) : await this.fetchBlock(next, options.signal) }
      } catch (error) {
        return { slot, cid: next, error }
      }
    }
    const pending = [cid]
    // reads in flight by a number of their own: the one the race hands on leaves, those that settled with it stay
    const reading = new Map<number, Promise<Read>>()
    let started = 0
    while (pending.length > 0 || reading.size > 0) {
      while (pending.length > 0 && reading.size < BLOCK_WINDOW) {
        reading.set(started, read(started, pending.pop() as CID))
        started++
      }
      const { slot, cid: next, bytes, error } = await Promise.race(reading.values())
      reading.delete(slot)
      if (error != null) {
        throw error
      }
      if (bytes == null) {
        throw new ContentFetchError(`block ${next.toString()} of ${cid.toString()} is not stored here`)
      }
      if (next.code === dagPb.code) {
        pending.push(...dagPb.decode(bytes).Links.map(link => link.Hash).reverse())
      }
      yield { cid: next, bytes }
    }
  }

  /** A block from here or over bitswap, asked again a few times: on a loaded machine bitswap gives up on a block the peer does have. */
  private async fetchBlock (cid: CID, signal: AbortSignal): Promise<Uint8Array> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.treeBlocks('content').getBlock(cid, signal)
      } catch (err) {
        if (signal.aborted || attempt >= BLOCK_ATTEMPTS) {
          throw err
        }
        await new Promise(resolve => setTimeout(resolve, 200 * attempt))
      }
    }
  }

  /** A block from our own blockstore, never the network; undefined when we do not have it. */
  async localBlock (cid: CID, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    if (!await this.local.has(cid, { signal })) {
      return undefined
    }
    const chunks: Uint8Array[] = []
    for await (const chunk of this.local.get(cid, { signal })) {
      chunks.push(chunk)
    }
    return concat(chunks)
  }

  /** Stores a directory tree (or one file) as UnixFS and returns its CID; the same tree always gives the same CID. */
  async addTree (tree: TreeEntry, signal?: AbortSignal): Promise<CID> {
    return addTree(tree, this.treeBlocks('tree'), signal)
  }

  /**
   * Reads the UnixFS directory (or file, then seen as a directory holding
   * it) a CID names, from here or over bitswap, every block hash-checked,
   * within `limits`.
   */
  async getTree (cid: CID, options: Omit<GetContentOptions, 'maxBytes'> & TreeLimits): Promise<TreeDirectory> {
    try {
      return await readTree(cid, this.treeBlocks(options.what), options, options.signal)
    } catch (err) {
      throw this.fetchFailure(err, cid, options)
    }
  }

  /** Reads the UnixFS file, directory or symlink a CID names, as it is, from here or over bitswap, every block hash-checked, within `limits`. */
  async getEntry (cid: CID, options: Omit<GetContentOptions, 'maxBytes'> & TreeLimits): Promise<TreeEntry> {
    try {
      return await readTreeEntry(cid, this.treeBlocks(options.what), options, options.signal)
    } catch (err) {
      throw this.fetchFailure(err, cid, options)
    }
  }

  private treeBlocks (what: string): TreeBlocks {
    return {
      addBytes: async (bytes, signal) => this.add(bytes, signal),
      cat: async (cid, maxBytes, signal) => this.get(cid, { signal, maxBytes, what: `file in the ${what}` }),
      getBlock: async (cid, signal) => {
        const chunks: Uint8Array[] = []
        for await (const chunk of this.helia.blockstore.get(cid, { signal })) {
          chunks.push(chunk)
        }
        return concat(chunks)
      },
      putBlock: async (cid, bytes, signal) => { await this.helia.blockstore.put(cid, bytes, { signal }) }
    }
  }

  /** Whether the content's root block is stored here, so reading it needs no network. */
  async has (cid: CID, signal?: AbortSignal): Promise<boolean> {
    return this.helia.blockstore.has(cid, { signal })
  }

  /** Reads content from the local store, or from connected peers over bitswap. */
  async get (cid: CID, options: GetContentOptions): Promise<Uint8Array> {
    const chunks: Uint8Array[] = []
    let size = 0
    try {
      for await (const chunk of this.fs.cat(cid, { signal: options.signal })) {
        size += chunk.byteLength
        if (size > options.maxBytes) {
          throw new InputTooLargeError(`the ${options.what} ${cid.toString()} is larger than the ${options.maxBytes} bytes allowed`)
        }
        chunks.push(chunk)
      }
    } catch (err) {
      throw this.fetchFailure(err, cid, options)
    }
    if (chunks.length === 1 && chunks[0] != null) {
      return chunks[0]
    }
    const bytes = new Uint8Array(size)
    let offset = 0
    for (const chunk of chunks) {
      bytes.set(chunk, offset)
      offset += chunk.byteLength
    }
    return bytes
  }

  /** The typed error for a failed read: our own errors as they are, an abort as ours or as "too slow". */
  private fetchFailure (err: unknown, cid: CID, options: Pick<GetContentOptions, 'signal' | 'what'>): Error {
    if (err instanceof InputTooLargeError) {
      return err
    }
    if (options.signal.aborted) {
      // aborted for a reason of ours (the worker is stopping, the job was cancelled): say that, not "too slow"
      if (options.signal.reason instanceof WasmeshError) {
        return options.signal.reason
      }
      return new ContentFetchError(`could not fetch the ${options.what} ${cid.toString()}: no connected peer sent it in time`, { cause: err })
    }
    if (err instanceof WasmeshError) {
      return err
    }
    return new ContentFetchError(`could not read the ${options.what} ${cid.toString()}: ${(err as Error).message}`, { cause: err })
  }
}
