/**
 * Functions over HTTP, shared by the gateway (apps/cli/gateway.ts) and the
 * Service Worker bridge (web/functions-sw.ts): the `/fn/<owner>/<name>/<path>`
 * routes, the headers that carry the worker and its signed receipt, and how
 * each failure maps to an HTTP status.
 */
import { toString } from 'uint8arrays/to-string'
import { fromString } from 'uint8arrays/from-string'
import { encodeSignedReceipt } from '../wire/receipt.ts'
import { FUNCTION_NAME } from '../wire/function.ts'
import type { WasmeshError } from '../errors.ts'
import type { SignedReceipt } from '../wire/receipt-types.ts'
import type { CallResult } from './functions.ts'

/** Where a function is served: `/fn/<owner>/<name>/<path…>`. */
export const FUNCTION_ROUTE = '/fn/'

/** Response headers the gateway sets about a call. */
export const RECEIPT_HEADER = 'x-wasmesh-receipt'
export const WORKER_HEADER = 'x-wasmesh-worker'
export const JOB_HEADER = 'x-wasmesh-job'
export const VERSION_HEADER = 'x-wasmesh-function-version'
export const ERROR_HEADER = 'x-wasmesh-error'

/** Seconds a client is told to wait when no worker could take the call. */
export const RETRY_AFTER_S = 5

/** Headers a module may not set: the server owns framing and connection handling. */
const SERVER_OWNED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'trailer', 'te'])

export interface FunctionRoute {
  address: string
  /** PATH_INFO: the percent-decoded path below the function, starting with `/`. */
  path: string
}

/**
 * Splits a request path into the function's address and the path below it;
 * undefined when it is not under FUNCTION_ROUTE, or is malformed (a bad
 * percent-encoding, a NUL, a name that cannot be a function's).
 */
export function parseFunctionRoute (pathname: string): FunctionRoute | undefined {
  if (!pathname.startsWith(FUNCTION_ROUTE)) {
    return undefined
  }
  const [owner = '', name = '', ...rest] = pathname.slice(FUNCTION_ROUTE.length).split('/')
  if (!/^[1-9A-HJ-NP-Za-km-z]{1,128}$/.test(owner) || !FUNCTION_NAME.test(name)) {
    return undefined
  }
  let path: string
  try {
    path = `/${rest.map(segment => decodeURIComponent(segment)).join('/')}`
  } catch {
    return undefined
  }
  return path.includes('\0') ? undefined : { address: `${owner}/${name}`, path }
}

/** The signed receipt as it travels in a header: base64 of its dag-cbor (`decodeSignedReceipt` reads it back). */
export function receiptHeaderValue (signed: SignedReceipt): string {
  return toString(encodeSignedReceipt(signed), 'base64')
}

/** Reads a receipt header back into the bytes `decodeSignedReceipt` takes. */
export function receiptHeaderBytes (value: string): Uint8Array {
  return fromString(value, 'base64')
}

/** The module's headers (minus those the server owns), and the worker, job, version and signed receipt. */
export function responseHeaders (result: CallResult): Array<[string, string]> {
  return [
    ...result.headers.filter(([name]) => !SERVER_OWNED.has(name)),
    [WORKER_HEADER, result.worker],
    [JOB_HEADER, result.job.toString()],
    [VERSION_HEADER, String(result.version)],
    [RECEIPT_HEADER, receiptHeaderValue(result.receipt.signed)]
  ]
}

/** An HTTP answer for a failed call. */
export interface HttpFailure {
  status: number
  headers: Array<[string, string]>
  body: string
}

const NOT_NOW = new Set(['NoWorkersError', 'NotEnoughWorkersError', 'JobFailedError', 'WorkerLostError', 'WorkerBusyError', 'ContentFetchError', 'DeadlineError'])

/**
 * The HTTP status for a failed call: 400 a request no function should get,
 * 404 an unknown function, 413 a body too large, 502 the module failed (its
 * receipt in the headers, the reason in the body), 503 + Retry-After no
 * worker could run it now, 504 the caller gave up waiting.
 */
export function httpFailure (err: unknown): HttpFailure {
  const error = err as WasmeshError
  const name = error instanceof Error ? error.name : 'Error'
  const status = error.receipt != null || name === 'FunctionResponseError'
    ? 502
    : name === 'MalformedMessageError' || name === 'InvalidManifestError'
      ? 400
      : name === 'FunctionNotFoundError'
        ? 404
        : name === 'InputTooLargeError'
          ? 413
          : NOT_NOW.has(name)
            ? 503
            : name === 'TimeoutError' || name === 'AbortError' || name === 'CancelledError'
              ? 504
              : 500
  const headers: Array<[string, string]> = [['content-type', 'text/plain; charset=utf-8'], [ERROR_HEADER, name]]
  if (status === 503) {
    headers.push(['retry-after', String(RETRY_AFTER_S)])
  }
  if (error.receipt != null) {
    headers.push([WORKER_HEADER, error.receipt.worker], [JOB_HEADER, error.receipt.job.toString()])
    if (error.signed != null) {
      headers.push([RECEIPT_HEADER, receiptHeaderValue(error.signed)])
    }
  }
  const message = error instanceof Error ? error.message : String(err)
  return { status, headers, body: `${name}: ${message.replace(/[\r\n]+/g, ' ')}\n` }
}
