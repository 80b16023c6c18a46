/** The receipt's types alone, so that errors can carry a receipt without importing the codec. */
import type { CID } from 'multiformats/cid'

/** What a worker states, under its signature, about one run of a job. */
export interface Receipt {
  v: 1
  /** The job spec's CID. */
  job: CID
  /** The worker's peer id; its public key verifies the signature. */
  worker: string
  /** The module's exit status (0 = success), or -1 when it did not exit by itself. */
  exitCode: number
  /** Why the run failed, when it did not exit by itself. `name` is an error class name. */
  error?: { name: string, message: string }
  /** Inline output bytes, or the CID of a UnixFS file holding them. */
  output: Uint8Array | CID
  /** sha2-256 multihash of the full output: what redundant runs are compared by. */
  outputHash: Uint8Array
  outputSize: number
  /**
   * The final tree of each writable mount, as a UnixFS directory CID, in the
   * order of the job spec's mounts. Absent when the job has no writable
   * mount (so receipts signed before mounts existed still verify), or when
   * the module never ran.
   */
  mounts?: MountOutput[]
  /** Tail of stderr, for diagnostics. */
  stderr: Uint8Array
  stats: ReceiptStats
  /** Milliseconds since the Unix epoch when the worker signed. */
  timestamp: number
}

/** A writable mount's final contents, as the worker signed them. */
export interface MountOutput {
  path: string
  cid: CID
}

export interface ReceiptStats {
  /** Waiting in the worker's queue for a slot, after the worker took the job. */
  queueMs?: number
  /** Fetching module and input from the network. */
  fetchMs: number
  compileMs: number
  execMs: number
  /** The module was already compiled on this worker: nothing was fetched or compiled. */
  moduleCached: boolean
}

/**
 * A receipt as it travels: the exact signed bytes and the signature over
 * them, or, for a receipt signed in a batch, over the root of the batch's
 * Merkle tree, with the path from this receipt's leaf to that root.
 */
export interface SignedReceipt {
  payload: Uint8Array
  signature: Uint8Array
  batch?: ReceiptBatchProof
}

/** Where a receipt sits in the batch its worker signed at once. */
export interface ReceiptBatchProof {
  /** The receipt's leaf among the batch's `count`. */
  index: number
  count: number
  /** Sibling hashes from the leaf up to the signed root. */
  path: Uint8Array[]
}

/** A signed receipt whose signature has been checked. */
export interface VerifiedReceipt {
  receipt: Receipt
  signed: SignedReceipt
}
