import { Key, type Datastore } from 'interface-datastore'
import { CID } from 'multiformats/cid'
import { decodeCbor, encodeCbor } from '../wire/cbor.ts'
import { MAX_INLINE_BYTES } from '../constants.ts'
import { checkOutput, decodeSignedReceipt, encodeSignedReceipt, verifyReceipt, type VerifiedReceipt } from '../wire/receipt.ts'
import { asArray, asBytes, asRecord } from '../wire/validate.ts'
import type { ContentStore } from './content.ts'

const PREFIX = '/wasmesh/results/'
/** Accepted results by each worker whose receipt they rest on, with all those workers: what to revisit when workers are caught lying. */
const WORD_OF_PREFIX = '/wasmesh/results-by-worker/'
const FAILURE_PREFIX = '/wasmesh/failures/'

export interface StoredResult {
  receipts: VerifiedReceipt[]
  output: Uint8Array
}

/**
 * Accepted results by job CID, persisted in the peer's datastore. A job's CID
 * names everything that determines its output, so a result accepted once is
 * the result: a restarted batch takes finished jobs from here instead of
 * running them again. Receipts are verified again when read, so a corrupted
 * or edited store is caught, not trusted.
 */
export interface ResultStoreComponents {
  datastore: Datastore
  content: ContentStore
}

export class ResultStore {
  private readonly datastore: Datastore
  private readonly content: ContentStore

  constructor (components: ResultStoreComponents) {
    this.datastore = components.datastore
    this.content = components.content
  }

  /** Whether a result for the job is stored (not verified: `get` does that). */
  async has (job: CID, signal?: AbortSignal): Promise<boolean> {
    return this.datastore.has(new Key(PREFIX + job.toString()), { signal })
  }

  async get (job: CID, signal: AbortSignal): Promise<StoredResult | undefined> {
    const key = new Key(PREFIX + job.toString())
    if (!await this.datastore.has(key, { signal })) {
      return undefined
    }
    try {
      const record = asRecord(decodeCbor(await this.datastore.get(key, { signal }), 'stored result'), 'stored result')
      const receipts = await Promise.all(asArray(record.receipts, 'stored receipts', 64).map(async bytes => verifyReceipt(decodeSignedReceipt(asBytes(bytes, 'stored receipt', MAX_INLINE_BYTES * 2)), { job })))
      const outputRef = CID.asCID(record.output)
      const output = outputRef != null
        ? await this.content.get(outputRef, { signal, maxBytes: Number.MAX_SAFE_INTEGER, what: 'stored output' })
        : asBytes(record.output, 'stored output', MAX_INLINE_BYTES)
      const first = receipts[0]
      if (first == null) {
        return undefined
      }
      await checkOutput(first.receipt, output)
      return { receipts, output }
    } catch {
      return undefined // unreadable or failed verification: run the job again
    }
  }

  async put (job: CID, result: StoredResult, signal: AbortSignal): Promise<void> {
    const output = result.output.byteLength <= MAX_INLINE_BYTES ? result.output : await this.content.add(result.output, signal)
    await this.datastore.put(new Key(PREFIX + job.toString()), encodeCbor({
      receipts: result.receipts.map(r => encodeSignedReceipt(r.signed)),
      output
    }), { signal })
    await this.datastore.delete(new Key(FAILURE_PREFIX + job.toString()), { signal })
    const workers = result.receipts.map(r => r.receipt.worker)
    for (const worker of workers) {
      await this.datastore.put(new Key(`${WORD_OF_PREFIX}${worker}/${job.toString()}`), encodeCbor(workers), { signal })
    }
  }

  /**
   * Forgets every result that rests only on the word of banned workers (one
   * liar alone, or colluders who agreed with each other), and returns their
   * job CIDs: run them again elsewhere. Called when `worker` is banned.
   */
  async invalidateWordOf (worker: string, isBanned: (peerId: string) => boolean, signal?: AbortSignal): Promise<string[]> {
    const jobs: string[] = []
    for await (const { key, value } of this.datastore.query({ prefix: `${WORD_OF_PREFIX}${worker}/` }, { signal })) {
      const workers = decodeCbor(value, 'result index') as string[]
      if (Array.isArray(workers) && workers.every(isBanned)) {
        const job = key.baseNamespace()
        jobs.push(job)
        await this.datastore.delete(new Key(PREFIX + job), { signal })
      }
      await this.datastore.delete(key, { signal })
    }
    return jobs
  }

  /** Records that a job failed, and why, so batches can count their failures across restarts. */
  async putFailure (job: CID, error: { name: string, message: string }, signal?: AbortSignal): Promise<void> {
    await this.datastore.put(new Key(FAILURE_PREFIX + job.toString()), encodeCbor(error), { signal })
  }

  /** Whether the job's last run failed (and has not been accepted since). */
  async hasFailed (job: CID, signal?: AbortSignal): Promise<boolean> {
    return this.datastore.has(new Key(FAILURE_PREFIX + job.toString()), { signal })
  }
}
