/**
 * The HTTP gateway: serves `http://host:port/fn/<owner>/<name>/<path…>` by
 * calling the function on the mesh through a peer, WAGI-style. Every
 * response names its worker and carries the worker's signed receipt in
 * headers (protocol/functions/http.ts), so a client can verify what it got.
 * Hardened like the page server: timeouts, a body cap, and nothing a client
 * sends can take the process down.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { httpFailure, parseFunctionRoute, responseHeaders, FUNCTION_ROUTE, MAX_FUNCTION_BODY_BYTES, type FunctionRequest, type Peer } from '../../node/index.ts'
import { guardAgainstClients, listenOn } from './page-server.ts'

/** Longest a call may take, from the request's end to the function's answer. */
const CALL_TIMEOUT_MS = 120_000

const TEXT = 'text/plain; charset=utf-8'

export interface GatewayOptions {
  /** 0 picks a free port. */
  port: number
  /** @default '127.0.0.1' */
  host?: string
  /** Larger request bodies get 413. @default MAX_FUNCTION_BODY_BYTES */
  maxBodyBytes?: number
  /** @default CALL_TIMEOUT_MS */
  callTimeoutMs?: number
}

export interface Gateway {
  url: string
  urls: string[]
  close: () => Promise<void>
}

export async function serveGateway (peer: Peer, options: GatewayOptions): Promise<Gateway> {
  const maxBodyBytes = options.maxBodyBytes ?? MAX_FUNCTION_BODY_BYTES
  const callTimeoutMs = options.callTimeoutMs ?? CALL_TIMEOUT_MS
  const server = createServer((req, res) => {
    // fenced: nothing a client sends may take the process (and the peer beside it) down
    handle(req, res).catch((err: Error) => { fail(res, 500, `internal error: ${err.message}\n`) })
  })
  guardAgainstClients(server)

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://gateway')
    } catch {
      fail(res, 400, 'bad request: the URL does not parse\n')
      return
    }
    if (url.pathname === '/' || url.pathname === FUNCTION_ROUTE) {
      const functions = peer.functions().map(({ address, manifest }) => ({ address, url: `${FUNCTION_ROUTE}${address}/`, version: manifest.version, abi: manifest.abi, module: manifest.module.toString() }))
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify({ functions }))
      return
    }
    const route = parseFunctionRoute(url.pathname)
    if (route == null) {
      fail(res, url.pathname.startsWith(FUNCTION_ROUTE) ? 400 : 404, url.pathname.startsWith(FUNCTION_ROUTE)
        ? 'bad request: expected /fn/<owner peer id>/<name>/<path>, percent-encoded UTF-8\n'
        : `not found: functions are served under ${FUNCTION_ROUTE}<owner>/<name>/\n`)
      return
    }
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > maxBodyBytes) {
      fail(res, 413, `request body over ${maxBodyBytes} bytes\n`, true)
      return
    }
    const body = await readBody(req, maxBodyBytes)
    if (body == null) {
      fail(res, 413, `request body over ${maxBodyBytes} bytes\n`, true)
      return
    }
    const headers: Array<[string, string]> = []
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      headers.push([req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string])
    }
    const request: FunctionRequest = { method: req.method ?? 'GET', path: route.path, query: url.search.slice(1), headers, body }
    const gone = new AbortController()
    res.on('close', () => { gone.abort(new Error('the client went away')) })
    try {
      const result = await peer.call(route.address, request, { signal: AbortSignal.any([gone.signal, AbortSignal.timeout(callTimeoutMs)]) })
      if (res.destroyed) {
        return
      }
      res.writeHead(result.status, [...responseHeaders(result), ['content-length', String(result.body.byteLength)]].flat())
      res.end(req.method === 'HEAD' ? undefined : result.body)
    } catch (err) {
      if (res.destroyed) {
        return
      }
      const failure = httpFailure(err)
      res.writeHead(failure.status, failure.headers.flat()).end(failure.body)
    }
  }

  const { port, urls } = await listenOn(server, options.port, options.host ?? '127.0.0.1')
  return { url: urls[0] ?? `http://127.0.0.1:${port}/`, urls, close: async () => closeServer(server) }
}

/** The request body, or undefined once it passes `max` bytes (the rest is not read). */
async function readBody (req: IncomingMessage, max: number): Promise<Uint8Array | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).byteLength
    if (size > max) {
      return undefined
    }
    chunks.push(chunk as Buffer)
  }
  return new Uint8Array(Buffer.concat(chunks))
}

function fail (res: ServerResponse, status: number, message: string, close = false): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  res.writeHead(status, { 'content-type': TEXT, ...(close ? { connection: 'close' } : {}) }).end(message)
}

async function closeServer (server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>(done => { server.close(() => { done() }) })
}
