/**
 * The binary Merkle tree a worker signs a batch of receipts with: one
 * signature over the root stands for every receipt in the batch, and each
 * receipt travels with the path that leads from its leaf to that root, so it
 * still verifies alone. Leaves and inner nodes are hashed with distinct
 * prefixes (as in RFC 6962), so no leaf can pose as an inner node. A level
 * with an odd count carries its last node up unchanged.
 */
import { sha256 } from 'multiformats/hashes/sha2'
import { concat } from 'uint8arrays/concat'

const LEAF = Uint8Array.of(0)
const NODE = Uint8Array.of(1)

async function hash (bytes: Uint8Array): Promise<Uint8Array> {
  return (await sha256.digest(bytes)).digest
}

export async function merkleLeaf (payload: Uint8Array): Promise<Uint8Array> {
  return hash(concat([LEAF, payload]))
}

async function merkleNode (left: Uint8Array, right: Uint8Array): Promise<Uint8Array> {
  return hash(concat([NODE, left, right]))
}

/** The root over `leaves`, and for each leaf the sibling hashes on its way up. */
export async function merkleTree (leaves: readonly Uint8Array[]): Promise<{ root: Uint8Array, paths: Uint8Array[][] }> {
  if (leaves.length === 0) {
    throw new RangeError('a Merkle tree needs at least one leaf')
  }
  const paths: Uint8Array[][] = leaves.map(() => [])
  // which leaves sit under each node of the current level
  let under: number[][] = leaves.map((_, i) => [i])
  let level = [...leaves]
  while (level.length > 1) {
    const next: Uint8Array[] = []
    const nextUnder: number[][] = []
    for (let i = 0; i < level.length; i += 2) {
      const left = level[i] as Uint8Array
      const right = level[i + 1]
      if (right == null) {
        next.push(left)
        nextUnder.push(under[i] as number[])
        continue
      }
      for (const leaf of under[i] as number[]) {
        (paths[leaf] as Uint8Array[]).push(right)
      }
      for (const leaf of under[i + 1] as number[]) {
        (paths[leaf] as Uint8Array[]).push(left)
      }
      next.push(await merkleNode(left, right))
      nextUnder.push([...under[i] as number[], ...under[i + 1] as number[]])
    }
    level = next
    under = nextUnder
  }
  return { root: level[0] as Uint8Array, paths }
}

/** The root a leaf's path leads to, or undefined when the path does not fit a tree of `count` leaves. */
export async function merkleRootOf (leaf: Uint8Array, index: number, count: number, path: readonly Uint8Array[]): Promise<Uint8Array | undefined> {
  if (!Number.isInteger(index) || !Number.isInteger(count) || index < 0 || index >= count) {
    return undefined
  }
  let node = leaf
  let used = 0
  let size = count
  while (size > 1) {
    const carried = index === size - 1 && size % 2 === 1
    if (!carried) {
      const sibling = path[used++]
      if (sibling == null) {
        return undefined
      }
      node = index % 2 === 0 ? await merkleNode(node, sibling) : await merkleNode(sibling, node)
    }
    index = Math.floor(index / 2)
    size = Math.ceil(size / 2)
  }
  return used === path.length ? node : undefined
}
