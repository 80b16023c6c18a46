/** The requester's public types, apart from its class, so a job's run (job-run.ts) can name them without importing the requester. */
import type { Auditor } from './auditor.ts'
import type { MountTree } from './mount-trees.ts'
import type { Reputation } from './reputation.ts'
import type { Scheduler } from './scheduler.ts'
import type { CapacityService } from '../net/capacity.ts'
import type { JobClient } from '../net/job-client.ts'
import type { ContentStore } from '../store/content.ts'
import type { ResultStore } from '../store/results.ts'
import type { Receipt, VerifiedReceipt } from '../wire/receipt.ts'
import type { CID } from 'multiformats/cid'
import type { PeerId } from '@libp2p/interface'

export interface RunResult {
  /** The job spec's CID: the job's identity. */
  job: CID
  output: Uint8Array
  /** The output as UTF-8 text. */
  text: () => string
  /** Each writable mount's final tree, in the order of the job's mounts, fetched and checked against the signed CIDs. */
  mounts: MountTree[]
  /** The receipt of the worker whose output was accepted first. */
  receipt: Receipt
  /** Every verified receipt that agreed with the accepted output, one per distinct worker. */
  receipts: VerifiedReceipt[]
  /** Peer id of the worker that produced `receipt`. */
  worker: string
  /** From submission to accepted output, in milliseconds. */
  durationMs: number
  /** The result was accepted earlier and read back from the result store (`resume`). */
  resumed: boolean
}

export interface JobEvent { job: string, worker?: string, error?: Error, durationMs?: number }

export interface RequesterEvents {
  'job:queued': CustomEvent<JobEvent>
  /** The job was sent to a worker (`worker`). */
  'job:running': CustomEvent<JobEvent>
  /** One execution ended without a usable result (busy, lost, late, refused): another is tried. */
  'job:retry': CustomEvent<JobEvent>
  /** The job's one terminal event when it succeeded. */
  'job:done': CustomEvent<JobEvent>
  /** The job's one terminal event when it failed or was cancelled. */
  'job:failed': CustomEvent<JobEvent>
  /** A result accepted earlier on one worker's word was withdrawn: that worker has been banned. Run the job again. */
  'job:invalidated': CustomEvent<JobEvent>
}

export type JobEventType = keyof RequesterEvents

export interface RequesterComponents {
  peerId: PeerId
  capacity: CapacityService
  client: JobClient
  content: ContentStore
  scheduler: Scheduler
  reputation: Reputation
  results: ResultStore
  /** Runs a disputed job here to settle a 2-to-1 vote; without one, such votes only give strikes. */
  auditor?: Pick<Auditor, 'outcome'>
}

export interface RequesterInit {
  /** Executions a job may use beyond twice its redundancy (lost, late or refused ones included). @default EXTRA_EXECUTIONS */
  maxAttempts?: number
  /** How long to wait for enough distinct workers to advertise. @default WORKER_WAIT_MS */
  workerWaitMs?: number
  /** Time allowed beyond a job's own limit. @default DEADLINE_GRACE_MS */
  deadlineGraceMs?: number
  /**
   * Check single results by running them on a second worker: every result of
   * a worker we do not trust yet, then a share that falls with its record.
   * @default true
   */
  spotCheck?: boolean
}

export interface ExecuteOptions {
  signal: AbortSignal
  /** Take the result from the result store if this job was accepted before, and store new results. */
  resume: boolean
  /**
   * Receipts for this job that distinct workers already gave (in a chunk,
   * see chunker.ts), verified and with inline output: the job starts
   * from them as from executions of its own, and is judged with them.
   * Given (even empty), the job's `job:queued` event came from whoever
   * gathered them.
   */
  prior?: readonly VerifiedReceipt[]
}
