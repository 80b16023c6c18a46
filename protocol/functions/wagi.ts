/**
 * WAGI (https://github.com/deislabs/wagi): an HTTP request becomes a WASI
 * command's CGI environment (RFC 3875) and stdin; its stdout is a CGI
 * response: header lines, a blank line, the body.
 */
import { fromString } from 'uint8arrays/from-string'
import { toString } from 'uint8arrays/to-string'
import { MAX_ENV, MAX_STRING_LENGTH, SOFTWARE_VERSION } from '../constants.ts'
import { FunctionResponseError, MalformedMessageError } from '../errors.ts'

/** An HTTP request to a function. */
export interface FunctionRequest {
  /** @default 'GET' */
  method?: string
  /** The path below the function's address (CGI PATH_INFO). @default '/' */
  path?: string
  /** Without the leading `?`. @default '' */
  query?: string
  headers?: Record<string, string> | Iterable<[string, string]>
  body?: Uint8Array | string
}

/** A function's answer, as HTTP. */
export interface FunctionResponse {
  status: number
  /** Header names in lower case, in the order the module wrote them. */
  headers: Array<[string, string]>
  body: Uint8Array
}

/**
 * Request headers not passed to the module: hop-by-hop ones (RFC 9110 §7.6.1),
 * and credentials, which would be handed to whichever worker runs the call.
 */
const WITHHELD_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authorization', 'proxy-connection', 'authorization', 'cookie', 'host', 'content-length'])
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** The most bytes of header block a response may have before its body. */
const MAX_HEADER_BLOCK = 64 * 1024

/** Whether a string holds an ASCII control character (a tab allowed in header values, RFC 9110 §5.5). */
function hasControl (value: string, tabAllowed: boolean): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if ((code < 0x20 && !(tabAllowed && code === 0x09)) || code === 0x7f) {
      return true
    }
  }
  return false
}

/** The request's body as bytes. */
export function requestBody (request: FunctionRequest): Uint8Array {
  return typeof request.body === 'string' ? fromString(request.body) : request.body ?? new Uint8Array(0)
}

/**
 * The CGI variables for a request (RFC 3875 §4.1, WAGI's additions), over the
 * function's fixed environment. Throws MalformedMessageError for a request no
 * server should pass on: a method or header name that is not a token, a
 * value with a control character, more headers than a job's environment holds.
 */
export function wagiEnv (request: FunctionRequest, scriptName: string, fixed: Readonly<Record<string, string>> = {}): Record<string, string> {
  const method = request.method ?? 'GET'
  if (!TOKEN.test(method) || method.length > 32) {
    throw new MalformedMessageError(`"${method}" is not an HTTP method`)
  }
  const path = request.path ?? '/'
  const query = request.query ?? ''
  for (const [what, value] of [['path', path], ['query', query]] as const) {
    if (hasControl(value, false) || value.length > MAX_STRING_LENGTH) {
      throw new MalformedMessageError(`the request ${what} has control characters or is longer than ${MAX_STRING_LENGTH}`)
    }
  }
  const env: Record<string, string> = {
    ...fixed,
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: 'HTTP/1.1',
    SERVER_SOFTWARE: `wasmesh/${SOFTWARE_VERSION}`,
    REQUEST_METHOD: method.toUpperCase(),
    SCRIPT_NAME: scriptName,
    PATH_INFO: path,
    X_RAW_PATH_INFO: path,
    X_MATCHED_ROUTE: `${scriptName}/...`,
    QUERY_STRING: query,
    X_FULL_URL: `${scriptName}${path}${query !== '' ? `?${query}` : ''}`,
    CONTENT_LENGTH: String(requestBody(request).byteLength)
  }
  const headers = request.headers == null ? [] : Symbol.iterator in request.headers ? [...request.headers] : Object.entries(request.headers)
  for (const [rawName, value] of headers) {
    const name = rawName.toLowerCase()
    if (!TOKEN.test(name)) {
      throw new MalformedMessageError(`"${rawName}" is not an HTTP header name`)
    }
    if (hasControl(value, true) || value.length > MAX_STRING_LENGTH) {
      throw new MalformedMessageError(`the ${rawName} header has control characters or is longer than ${MAX_STRING_LENGTH}`)
    }
    if (name === 'host') {
      env.SERVER_NAME = value.replace(/:\d+$/, '')
    }
    if (WITHHELD_HEADERS.has(name)) {
      continue
    }
    const variable = name === 'content-type' ? 'CONTENT_TYPE' : `HTTP_${name.toUpperCase().replaceAll('-', '_')}`
    env[variable] = env[variable] != null && variable.startsWith('HTTP_') ? `${env[variable]}, ${value}` : value
  }
  if (Object.keys(env).length > MAX_ENV) {
    throw new MalformedMessageError(`the request has too many headers: a function's environment holds at most ${MAX_ENV} variables`)
  }
  return env
}

/**
 * Reads a WAGI module's stdout as a CGI response. `Status: 404 Not Found`
 * sets the status; a `Location` without one means 302 (RFC 3875 §6.2.3);
 * otherwise 200. A response needs Content-Type or Location: output with no
 * header block is FunctionResponseError (the gateway answers 502).
 */
export function parseWagiOutput (output: Uint8Array): FunctionResponse {
  const end = headerEnd(output)
  if (end == null) {
    throw new FunctionResponseError('the function printed no CGI headers (expected header lines, a blank line, then the body)')
  }
  const block = toString(output.subarray(0, end.headers))
  if (block.trim() === '') {
    throw new FunctionResponseError('the function printed an empty header block (expected at least Content-Type, then a blank line)')
  }
  const headers: Array<[string, string]> = []
  let status: number | undefined
  for (const line of block.split(/\r?\n/)) {
    const colon = line.indexOf(':')
    const name = line.slice(0, colon).trim().toLowerCase()
    if (colon <= 0 || !TOKEN.test(name)) {
      throw new FunctionResponseError(`the function printed a malformed header line: "${line.slice(0, 80)}"`)
    }
    const value = line.slice(colon + 1).trim()
    if (name === 'status') {
      const code = Number(value.split(' ')[0])
      if (!Number.isInteger(code) || code < 100 || code > 599) {
        throw new FunctionResponseError(`the function printed an invalid status: "${value.slice(0, 40)}"`)
      }
      status = code
      continue
    }
    headers.push([name, value])
  }
  const has = (name: string): boolean => headers.some(([header]) => header === name)
  if (!has('content-type') && !has('location')) {
    throw new FunctionResponseError('the function\'s response has neither Content-Type nor Location')
  }
  return { status: status ?? (has('location') ? 302 : 200), headers, body: output.subarray(end.body) }
}

/** Where the header block ends (before the blank line) and the body starts, or undefined when there is no blank line. */
function headerEnd (output: Uint8Array): { headers: number, body: number } | undefined {
  const limit = Math.min(output.byteLength, MAX_HEADER_BLOCK)
  for (let i = 0; i < limit; i++) {
    if (output[i] !== 0x0a) {
      continue
    }
    if (output[i + 1] === 0x0a) {
      return { headers: i > 0 && output[i - 1] === 0x0d ? i - 1 : i, body: i + 2 }
    }
    if (output[i + 1] === 0x0d && output[i + 2] === 0x0a) {
      return { headers: i > 0 && output[i - 1] === 0x0d ? i - 1 : i, body: i + 3 }
    }
  }
  return undefined
}
