import { decodeCbor, encodeCbor } from './cbor.ts'
import { MAX_CHUNK_ITEMS, MAX_CREDIT_WINDOW, MAX_MESSAGE_BYTES, MAX_STRING_LENGTH, MAX_SUBMIT_BATCH } from '../constants.ts'
import { MalformedMessageError, type WireError } from '../errors.ts'
import { asArray, asBytes, asInteger, asRecord, asString, onlyKeys, shown } from './validate.ts'

/**
 * Messages of the job-exchange protocol. A requester keeps one stream per
 * worker and pipelines requests on it; `id` pairs each answer with its request.
 *
 *   requester → worker: submit | submitMany | submitChunk | cancel
 *   worker → requester: credit | accepted | busy | receipt | chunk | error | alive
 *
 * `credit` (id 0) is flow control: how many jobs the requester may have
 * outstanding on this stream (running and queued at the worker). The worker
 * sends it when the stream opens and whenever it changes; a submit beyond it
 * is answered `busy`. `alive` (id 0) is the worker's heartbeat while it has
 * jobs in flight.
 *
 * `submitMany` (id 0) carries several jobs in one message, each with its own
 * id: the worker takes them one by one exactly as if each had come in its own
 * `submit` (each is answered, counts against the credit, can be cancelled).
 *
 * `submitChunk` carries up to MAX_CHUNK_ITEMS jobs that are run as one unit:
 * one slot, one answer (`chunk`, a result per job in order, the receipts
 * under one signature), one cancel for all. Each job counts against the
 * credit. A `map` of tiny jobs, or many `run` calls of them at once, travel this way (see job/chunker.ts).
 */
export type JobRequest =
  | { type: 'submit', id: number, job: Uint8Array }
  | { type: 'submitMany', id: 0, jobs: SubmittedJob[] }
  | { type: 'submitChunk', id: number, jobs: Uint8Array[] }
  | { type: 'cancel', id: number }

/** One job of a `submitMany`. */
export interface SubmittedJob {
  id: number
  job: Uint8Array
}

export type JobResponse =
  | { type: 'credit', id: 0, window: number }
  | { type: 'accepted', id: number }
  | { type: 'busy', id: number }
  | { type: 'receipt', id: number, receipt: Uint8Array }
  | { type: 'chunk', id: number, results: ChunkResult[] }
  | { type: 'error', id: number, error: WireError }
  | { type: 'alive', id: 0 }

/** One job of a chunk, in the chunk's order: its signed receipt, or why it has none. */
export type ChunkResult = { receipt: Uint8Array } | { error: WireError }

const MAX_ID = 2 ** 32 - 1

export function encodeMessage (message: JobRequest | JobResponse): Uint8Array {
  return encodeCbor(message)
}

export function decodeRequest (bytes: Uint8Array): JobRequest {
  const message = decodeEnvelope(bytes, 'job request')
  const id = asInteger(message.id, 'request id', 0, MAX_ID)
  switch (message.type) {
    case 'submit':
      onlyKeys(message, ['type', 'id', 'job'], 'submit request')
      return { type: 'submit', id, job: asBytes(message.job, 'submit.job', MAX_MESSAGE_BYTES) }
    case 'submitMany': {
      onlyKeys(message, ['type', 'id', 'jobs'], 'submitMany request')
      asInteger(id, 'submitMany.id', 0, 0)
      const jobs = asArray(message.jobs, 'submitMany.jobs', MAX_SUBMIT_BATCH).map((entry, i) => {
        const job = asRecord(entry, `submitMany.jobs[${i}]`)
        onlyKeys(job, ['id', 'job'], `submitMany.jobs[${i}]`)
        return { id: asInteger(job.id, `submitMany.jobs[${i}].id`, 1, MAX_ID), job: asBytes(job.job, `submitMany.jobs[${i}].job`, MAX_MESSAGE_BYTES) }
      })
      if (jobs.length === 0) {
        throw new MalformedMessageError('submitMany.jobs is empty')
      }
      return { type: 'submitMany', id: 0, jobs }
    }
    case 'submitChunk': {
      onlyKeys(message, ['type', 'id', 'jobs'], 'submitChunk request')
      const jobs = asArray(message.jobs, 'submitChunk.jobs', MAX_CHUNK_ITEMS).map((job, i) => asBytes(job, `submitChunk.jobs[${i}]`, MAX_MESSAGE_BYTES))
      if (jobs.length === 0) {
        throw new MalformedMessageError('submitChunk.jobs is empty')
      }
      return { type: 'submitChunk', id, jobs }
    }
    case 'cancel':
      onlyKeys(message, ['type', 'id'], 'cancel request')
      return { type: 'cancel', id }
    default:
      throw new MalformedMessageError(`unknown job request type ${shown(message.type)}`)
  }
}

export function decodeResponse (bytes: Uint8Array): JobResponse {
  const message = decodeEnvelope(bytes, 'job response')
  const id = asInteger(message.id, 'response id', 0, MAX_ID)
  switch (message.type) {
    case 'credit':
      onlyKeys(message, ['type', 'id', 'window'], 'credit response')
      return { type: 'credit', id: 0, window: asInteger(message.window, 'credit.window', 1, MAX_CREDIT_WINDOW) }
    case 'accepted':
      onlyKeys(message, ['type', 'id'], 'accepted response')
      return { type: 'accepted', id }
    case 'busy':
      onlyKeys(message, ['type', 'id'], 'busy response')
      return { type: 'busy', id }
    case 'alive':
      onlyKeys(message, ['type', 'id'], 'alive response')
      return { type: 'alive', id: 0 }
    case 'receipt':
      onlyKeys(message, ['type', 'id', 'receipt'], 'receipt response')
      return { type: 'receipt', id, receipt: asBytes(message.receipt, 'receipt response', MAX_MESSAGE_BYTES) }
    case 'chunk': {
      onlyKeys(message, ['type', 'id', 'results'], 'chunk response')
      const results = asArray(message.results, 'chunk.results', MAX_CHUNK_ITEMS).map((entry, i): ChunkResult => {
        const result = asRecord(entry, `chunk.results[${i}]`)
        if (result.receipt !== undefined) {
          onlyKeys(result, ['receipt'], `chunk.results[${i}]`)
          return { receipt: asBytes(result.receipt, `chunk.results[${i}].receipt`, MAX_MESSAGE_BYTES) }
        }
        onlyKeys(result, ['error'], `chunk.results[${i}]`)
        return { error: decodeWireError(result.error, `chunk.results[${i}].error`) }
      })
      return { type: 'chunk', id, results }
    }
    case 'error':
      onlyKeys(message, ['type', 'id', 'error'], 'error response')
      return { type: 'error', id, error: decodeWireError(message.error, 'error response', 'error') }
    default:
      throw new MalformedMessageError(`unknown job response type ${shown(message.type)}`)
  }
}

/** An error as the wire carries it; `field` names its parts in what a malformed one is told. */
function decodeWireError (value: unknown, what: string, field = what): WireError {
  const error = asRecord(value, what)
  onlyKeys(error, ['name', 'message'], what)
  return { name: asString(error.name, `${field}.name`, 128), message: asString(error.message, `${field}.message`, MAX_STRING_LENGTH) }
}

function decodeEnvelope (bytes: Uint8Array, what: string): Record<string, unknown> {
  if (bytes.byteLength > MAX_MESSAGE_BYTES) {
    throw new MalformedMessageError(`${what} is ${bytes.byteLength} bytes, more than the ${MAX_MESSAGE_BYTES} allowed`)
  }
  return asRecord(decodeCbor(bytes, what), what)
}
