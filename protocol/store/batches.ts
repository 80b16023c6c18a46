import { Key, type Datastore } from 'interface-datastore'
import type { CID } from 'multiformats/cid'
import { decodeCbor, encodeCbor } from '../wire/cbor.ts'
import { MalformedMessageError } from '../errors.ts'
import { decodeJob, type EncodedJob } from '../wire/job.ts'
import { asArray, asCid, asInteger, asRecord, asString } from '../wire/validate.ts'

const BATCH_PREFIX = '/wasmesh/batches/'
const JOB_PREFIX = '/wasmesh/jobs/'

export interface BatchRecord {
  id: string
  /** The jobs, in input order. */
  jobs: CID[]
  createdAt: number
}

/**
 * The requester's persistent queue: a batch is stored, job specs and all,
 * before any job runs. After a restart or a page reload the batch is read
 * back and run again with `resume`, so finished jobs come from the result
 * store and only the rest run.
 */
export class BatchStore {
  private readonly datastore: Datastore

  constructor ({ datastore }: { datastore: Datastore }) {
    this.datastore = datastore
  }

  async save (id: string, jobs: EncodedJob[], signal?: AbortSignal): Promise<void> {
    const batch = this.datastore.batch()
    for (const job of jobs) {
      batch.put(new Key(JOB_PREFIX + job.cid.toString()), job.bytes)
    }
    batch.put(batchKey(id), encodeCbor({ id, jobs: jobs.map(job => job.cid), createdAt: Date.now() }))
    await batch.commit({ signal })
  }

  async get (id: string, signal?: AbortSignal): Promise<BatchRecord | undefined> {
    if (!await this.datastore.has(batchKey(id), { signal })) {
      return undefined
    }
    return toRecord(decodeCbor(await this.datastore.get(batchKey(id), { signal }), 'batch record'))
  }

  async jobs (record: BatchRecord, signal?: AbortSignal): Promise<EncodedJob[]> {
    return Promise.all(record.jobs.map(async cid => decodeJob(await this.datastore.get(new Key(JOB_PREFIX + cid.toString()), { signal }))))
  }

  async list (signal?: AbortSignal): Promise<BatchRecord[]> {
    const records: BatchRecord[] = []
    for await (const { value } of this.datastore.query({ prefix: BATCH_PREFIX }, { signal })) {
      try {
        records.push(toRecord(decodeCbor(value, 'batch record')))
      } catch {
        // unreadable: skipped, not fatal
      }
    }
    return records.sort((a, b) => a.createdAt - b.createdAt)
  }

  /** Forgets a batch; job specs another batch also names stay. */
  async delete (id: string, signal?: AbortSignal): Promise<void> {
    const record = await this.get(id, signal)
    if (record == null) {
      return
    }
    const stillNamed = new Set((await this.list(signal)).filter(other => other.id !== id).flatMap(other => other.jobs.map(cid => cid.toString())))
    const batch = this.datastore.batch()
    for (const cid of record.jobs) {
      if (!stillNamed.has(cid.toString())) {
        batch.delete(new Key(JOB_PREFIX + cid.toString()))
      }
    }
    batch.delete(batchKey(id))
    await batch.commit({ signal })
  }
}

function batchKey (id: string): Key {
  if (!/^[\w.-]{1,128}$/.test(id)) {
    throw new MalformedMessageError(`batch id "${id}" must be 1-128 letters, digits, '_', '-' or '.'`)
  }
  return new Key(BATCH_PREFIX + id)
}

function toRecord (value: unknown): BatchRecord {
  const record = asRecord(value, 'batch record')
  return {
    id: asString(record.id, 'batch.id', 128),
    jobs: asArray(record.jobs, 'batch.jobs', 10_000_000).map((cid, i) => asCid(cid, `batch.jobs[${i}]`)),
    createdAt: asInteger(record.createdAt, 'batch.createdAt', 0, Number.MAX_SAFE_INTEGER)
  }
}
