import { decodeCbor, encodeCbor } from './cbor.ts'
import { MAX_CREDIT_WINDOW, MAX_MESSAGE_BYTES, MAX_STRING_LENGTH, MAX_SUBMIT_BATCH } from '../constants.ts'
import { MalformedMessageError } from '../errors.ts'
import { asArray, asBytes, asInteger, asRecord, asString, onlyKeys, shown } from './validate.ts'

/**
 * Messages of the job-exchange protocol. A requester keeps one stream per
 * worker and pipelines requests on it; `id` pairs each answer with its request.
 *
 *   requester → worker: submit | submitMany | cancel
 *   worker → requester: credit | accepted | busy | receipt | error | alive
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
 */
export type JobRequest =
  | { type: 'submit', id: number, job: Uint8Array }
  | { type: 'submitMany', id: 0, jobs: SubmittedJob[] }
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
  | { type: 'error', id: number, error: { name: string, message: string } }
  | { type: 'alive', id: 0 }

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
    case 'error': {
      onlyKeys(message, ['type', 'id', 'error'], 'error response')
      const error = asRecord(message.error, 'error response')
      onlyKeys(error, ['name', 'message'], 'error response')
      return { type: 'error', id, error: { name: asString(error.name, 'error.name', 128), message: asString(error.message, 'error.message', MAX_STRING_LENGTH) } }
    }
    default:
      throw new MalformedMessageError(`unknown job response type ${shown(message.type)}`)
  }
}

function decodeEnvelope (bytes: Uint8Array, what: string): Record<string, unknown> {
  if (bytes.byteLength > MAX_MESSAGE_BYTES) {
    throw new MalformedMessageError(`${what} is ${bytes.byteLength} bytes, more than the ${MAX_MESSAGE_BYTES} allowed`)
  }
  return asRecord(decodeCbor(bytes, what), what)
}
