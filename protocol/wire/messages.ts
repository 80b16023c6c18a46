import { decodeCbor, encodeCbor } from './cbor.ts'
import { MAX_MESSAGE_BYTES, MAX_STRING_LENGTH } from '../constants.ts'
import { MalformedMessageError } from '../errors.ts'
import { asBytes, asInteger, asRecord, asString, onlyKeys } from './validate.ts'

/**
 * Messages of the job-exchange protocol. A requester keeps one stream per
 * worker and pipelines requests on it; `id` pairs each answer with its request.
 *
 *   requester → worker: submit | cancel
 *   worker → requester: accepted | busy | receipt | error | alive
 *
 * `alive` (id 0) is the worker's heartbeat while it has jobs in flight.
 * `busy` may say how many requesters are ahead in the worker's line.
 */
export type JobRequest =
  | { type: 'submit', id: number, job: Uint8Array }
  | { type: 'cancel', id: number }

export type JobResponse =
  | { type: 'accepted', id: number }
  | { type: 'busy', id: number, ahead?: number }
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
    case 'cancel':
      onlyKeys(message, ['type', 'id'], 'cancel request')
      return { type: 'cancel', id }
    default:
      throw new MalformedMessageError(`unknown job request type "${String(message.type)}"`)
  }
}

export function decodeResponse (bytes: Uint8Array): JobResponse {
  const message = decodeEnvelope(bytes, 'job response')
  const id = asInteger(message.id, 'response id', 0, MAX_ID)
  switch (message.type) {
    case 'accepted':
      onlyKeys(message, ['type', 'id'], 'accepted response')
      return { type: 'accepted', id }
    case 'busy':
      onlyKeys(message, ['type', 'id', 'ahead'], 'busy response')
      return message.ahead === undefined ? { type: 'busy', id } : { type: 'busy', id, ahead: asInteger(message.ahead, 'busy.ahead', 0, MAX_ID) }
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
      throw new MalformedMessageError(`unknown job response type "${String(message.type)}"`)
  }
}

function decodeEnvelope (bytes: Uint8Array, what: string): Record<string, unknown> {
  if (bytes.byteLength > MAX_MESSAGE_BYTES) {
    throw new MalformedMessageError(`${what} is ${bytes.byteLength} bytes, more than the ${MAX_MESSAGE_BYTES} allowed`)
  }
  return asRecord(decodeCbor(bytes, what), what)
}
