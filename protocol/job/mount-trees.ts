import { FETCH_TIMEOUT_MS } from '../constants.ts'
import { InvalidReceiptError } from '../errors.ts'
import { DEFAULT_FILESYSTEM_BYTES, MAX_INODES } from '../runtime/fs.ts'
import type { TreeDirectory } from '../runtime/executor.ts'
import type { ContentStore } from '../store/content.ts'
import type { EncodedJob } from '../wire/job.ts'
import type { Receipt } from '../wire/receipt.ts'
import type { CID } from 'multiformats/cid'

/** A writable mount's final contents, as a worker signed them and we fetched them. */
export interface MountTree {
  path: string
  /** The UnixFS directory CID in the signed receipt. */
  cid: CID
  tree: TreeDirectory
}

/**
 * Fetches the final trees a receipt names for the job's writable mounts
 * (within FETCH_TIMEOUT_MS; every block is checked against its hash as it
 * arrives) and checks them: one per writable mount, in the spec's order, and
 * each in the canonical form our own workers write, so that two workers
 * that ended with the same files cannot sign two different CIDs for them.
 * A receipt that reports a failure may name none: the module never ran.
 */
export async function fetchMountTrees (job: EncodedJob, receipt: Receipt, content: Pick<ContentStore, 'getTree' | 'addTree'>, signal: AbortSignal): Promise<MountTree[]> {
  const expected = (job.spec.mounts ?? []).filter(mount => mount.writable).map(mount => mount.path)
  const signed = receipt.mounts
  if (signed == null) {
    if (expected.length > 0 && receipt.error == null) {
      throw new InvalidReceiptError(`the receipt of ${receipt.worker} says the module ran but names no final tree for its writable mounts (${expected.join(', ')})`)
    }
    return []
  }
  if (signed.length !== expected.length || signed.some((mount, i) => mount.path !== expected[i])) {
    throw new InvalidReceiptError(`the receipt of ${receipt.worker} names final trees for ${signed.map(m => m.path).join(', ') || 'no mount'}, not for the job's writable mounts ${expected.join(', ') || '(none)'}`)
  }
  const fetchSignal = AbortSignal.any([signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)])
  const trees: MountTree[] = []
  for (const { path, cid } of signed) {
    const tree = await content.getTree(cid, { signal: fetchSignal, maxBytes: DEFAULT_FILESYSTEM_BYTES, maxEntries: MAX_INODES, what: `final tree of ${path}` })
    if ((await content.addTree(tree, signal)).toString() !== cid.toString()) {
      throw new InvalidReceiptError(`the final tree of ${path} in the receipt of ${receipt.worker} is not in the canonical UnixFS form workers write: ${cid.toString()}`)
    }
    trees.push({ path, cid, tree })
  }
  return trees
}
