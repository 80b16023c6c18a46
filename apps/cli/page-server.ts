/**
 * A tiny static server for the built page (build/page), run by the bootstrap
 * node: cross-origin isolation headers on every response, and a generated
 * /config.json naming the bootstrap node's WebSocket multiaddrs, so the same
 * build works on any host that serves a config.json next to it. Also the
 * operations endpoints (/healthz, /metrics), alone for a worker peer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { readFile, stat } from 'node:fs/promises'
import { networkInterfaces } from 'node:os'
import { extname, join, normalize, resolve, sep } from 'node:path'
import { PAGE_DIR } from './package-files.ts'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8'
}

const HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff'
}

/** Time a client gets to send its request headers: a slow client holds a socket no longer. */
const HEADERS_TIMEOUT_MS = 10_000
/** Time a client gets to send its whole request (for the gateway, a call's own time is not counted). */
const REQUEST_TIMEOUT_MS = 30_000

/** Starts `server` on `host:port` (0 picks a port) and says where it is reachable. */
export async function listenOn (server: Server, wantedPort: number, host: string): Promise<{ host: string, port: number, urls: string[] }> {
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject)
    server.listen(wantedPort, host, () => { server.off('error', reject); resolveListen() })
  })
  const address = server.address()
  const port = typeof address === 'object' && address != null ? address.port : wantedPort
  return { host, port, urls: pageUrls(host, port) }
}

/**
 * What every HTTP server of ours needs against its clients: slow ones may
 * not hold sockets open for ever (slowloris), and a request the parser
 * refuses gets 400 (431 for oversized headers) and a closed socket.
 */
export function guardAgainstClients (server: Server): void {
  server.headersTimeout = HEADERS_TIMEOUT_MS
  server.requestTimeout = REQUEST_TIMEOUT_MS
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (socket.writable) {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request'
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`)
    }
    socket.destroy()
  })
}

/** The request path, percent-decoded; undefined when the encoding is malformed or names a NUL byte. */
function decodePath (url: string): string | undefined {
  try {
    const path = decodeURIComponent(new URL(url, 'http://x').pathname)
    return path.includes('\0') ? undefined : path
  } catch {
    return undefined
  }
}

function fail (res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  res.writeHead(status, { ...HEADERS, 'Content-Type': TYPES['.txt'] }).end(message)
}

export interface OperationsEndpoints {
  /** Answers GET /healthz for load balancers and supervisors: 200 with this as JSON, or 503 while it is undefined (starting). */
  health?: () => object | undefined
  /** Answers GET /metrics (Prometheus text format). */
  metrics?: () => Promise<string>
}

export interface PageServerOptions extends OperationsEndpoints {
  /** 0 picks a free port. */
  port: number
  /** @default '127.0.0.1' */
  host?: string
  /** The built page. @default the page shipped with wasmesh */
  root?: string
  /** The bootstrap multiaddrs written into /config.json (browsers use the /ws and /wss ones). */
  bootstrap: () => string[]
}

export interface PageServer {
  /** Where to open the page (on a wildcard host, the first interface's address). */
  url: string
  /** Every address the page can be opened at. */
  urls: string[]
  close: () => Promise<void>
}

/** Answers GET /healthz and /metrics when the path is one of those `endpoints` serves; false for any other path. */
function answerOperations (path: string, req: IncomingMessage, res: ServerResponse, endpoints: OperationsEndpoints): boolean {
  if (path === '/healthz' && endpoints.health != null) {
    const health = endpoints.health()
    const body = `${JSON.stringify(health ?? { status: 'starting' })}\n`
    res.writeHead(health != null ? 200 : 503, { ...HEADERS, 'Content-Type': TYPES['.json'], 'Cache-Control': 'no-store' }).end(req.method === 'HEAD' ? undefined : body)
    return true
  }
  if (path === '/metrics' && endpoints.metrics != null) {
    endpoints.metrics().then(body => {
      res.writeHead(200, { ...HEADERS, 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Cache-Control': 'no-store' }).end(req.method === 'HEAD' ? undefined : body)
    }, (err: Error) => { fail(res, 500, `metrics failed: ${err.message}\n`) })
    return true
  }
  return false
}

/**
 * An HTTP server with only /healthz and /metrics: what a worker peer shows
 * its supervisor and Prometheus (`wasmesh peer --metrics-port`).
 */
export async function serveOperations (options: OperationsEndpoints & { port: number, host?: string }): Promise<{ url: string, close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const path = decodePath(req.url ?? '/')
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...HEADERS, Allow: 'GET, HEAD' }).end()
    } else if (path == null || !answerOperations(path, req, res, options)) {
      fail(res, 404, 'not found: this server answers /healthz and /metrics\n')
    }
  })
  guardAgainstClients(server)
  const { port, urls } = await listenOn(server, options.port, options.host ?? '127.0.0.1')
  return { url: urls[0] ?? `http://127.0.0.1:${port}/`, close: async () => closeServer(server) }
}

export async function servePage (options: PageServerOptions): Promise<PageServer> {
  const root = resolve(options.root ?? PAGE_DIR)
  try {
    await stat(join(root, 'index.html'))
  } catch {
    throw new Error(`the page is not built (no ${join(root, 'index.html')}): run \`npm run build:web\` first`)
  }
  const server = createServer((req, res) => {
    // fenced: nothing a client sends may take the process (and the libp2p node beside it) down
    try {
      handle(req, res)
    } catch (err) {
      fail(res, 500, `internal error: ${(err as Error).message}`)
    }
  })
  guardAgainstClients(server)

  function handle (req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...HEADERS, Allow: 'GET, HEAD' }).end()
      return
    }
    const path = decodePath(req.url ?? '/')
    if (path == null) {
      fail(res, 400, 'bad request: the path is not valid percent-encoded UTF-8\n')
      return
    }
    if (answerOperations(path, req, res, options)) {
      return
    }
    if (path === '/config.json') {
      const body = JSON.stringify({ bootstrap: dialableFrom(options.bootstrap(), req.headers.host) })
      res.writeHead(200, { ...HEADERS, 'Content-Type': TYPES['.json'], 'Cache-Control': 'no-store' }).end(req.method === 'HEAD' ? undefined : body)
      return
    }
    const file = normalize(join(root, path.endsWith('/') ? `${path}index.html` : path))
    if (file !== root && !file.startsWith(root + sep)) {
      fail(res, 403, 'forbidden\n')
      return
    }
    readFile(file).then(body => {
      const cache = file.includes(`${sep}assets${sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache'
      res.writeHead(200, { ...HEADERS, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': cache, 'Content-Length': body.byteLength })
      res.end(req.method === 'HEAD' ? undefined : body)
    }, () => {
      fail(res, 404, 'not found\n')
    })
  }
  const { port, urls } = await listenOn(server, options.port, options.host ?? '127.0.0.1')
  return {
    url: urls[0] ?? `http://127.0.0.1:${port}/`,
    urls,
    close: async () => closeServer(server)
  }
}

/**
 * The bootstrap WebSocket addresses a browser that asked for the page under
 * `requestHost` can dial: never a wildcard (0.0.0.0, ::), loopback only for a
 * page opened on loopback, and the address the browser already reached first.
 */
export function dialableFrom (addresses: string[], requestHost: string | undefined): string[] {
  const host = requestHost == null ? undefined : new URL(`http://${requestHost}`).hostname.replace(/^\[|\]$/g, '')
  const onLoopback = host == null || isLoopbackHost(host)
  const dialable = addresses.filter(addr => {
    const ip = addr.match(/^\/(?:ip4|ip6|dns4|dns6|dns)\/([^/]+)/)?.[1]
    return /\/(ws|wss)(\/|$)/.test(addr) && ip !== '0.0.0.0' && ip !== '::' && (onLoopback || ip == null || !isLoopbackHost(ip))
  })
  const reached = (addr: string): boolean => host != null && addr.split('/')[2] === host
  return [...dialable.filter(reached), ...dialable.filter(addr => !reached(addr))]
}

function isLoopbackHost (host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1'
}

/** The URLs the page can be opened at: each interface's address when listening on all of them. */
export function pageUrls (host: string, port: number): string[] {
  const wildcard = host === '0.0.0.0' || host === '::'
  const hosts = wildcard
    ? Object.values(networkInterfaces()).flat().flatMap(i => i != null && (i.family === 'IPv4' || host === '::') && !i.address.startsWith('fe80') ? [i.address] : [])
    : [host]
  return hosts.map(h => `http://${h.includes(':') ? `[${h}]` : h}:${port}/`)
}

async function closeServer (server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>(done => { server.close(() => { done() }) })
}
