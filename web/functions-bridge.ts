/**
 * Front end as back end: registers the functions Service Worker
 * (web/functions-sw.ts) so that `fetch('fn/<owner>/<name>/…')` from any page
 * of the site is answered by the mesh through this tab's peer, with no server
 * beyond the static files. The Service Worker forwards each request here over
 * a MessageChannel; this tab calls the function and sends the response back,
 * with the worker and its signed receipt in headers as the gateway does.
 */
import { MAX_FUNCTION_BODY_BYTES } from '../protocol/constants.ts'
import { httpFailure, parseFunctionRoute, responseHeaders } from '../protocol/functions/http.ts'
import type { Peer } from '../protocol/peer.ts'
import type { BridgeReply, BridgeRequest } from './functions-sw.ts'

export interface ServeFunctionsOptions {
  /**
   * Where the site serves the Service Worker script: the page build emits it
   * as `fn-sw.js`; with the package, copy `dist/web/functions-sw.js`.
   * @default './fn-sw.js'
   */
  serviceWorkerUrl?: string | URL
  /** The Service Worker's scope: `fetch` calls under `<scope>fn/` go to the mesh. @default './' */
  scope?: string
  /** Larger request bodies get 413. @default MAX_FUNCTION_BODY_BYTES */
  maxBodyBytes?: number
}

export interface FunctionsBridge {
  /** The registration, active and controlling this tab. */
  registration: ServiceWorkerRegistration
  /** Stops answering requests from the Service Worker (it then asks other tabs). */
  stop: () => void
}

/**
 * Registers the functions Service Worker and answers its requests with
 * `peer.call`. Resolves once the Service Worker controls this tab, so the
 * page's next `fetch('fn/…')` goes to the mesh.
 */
export async function serveFunctions (peer: Peer, options: ServeFunctionsOptions = {}): Promise<FunctionsBridge> {
  const container = navigator.serviceWorker
  if (container == null) {
    throw new Error('this browser gives the page no Service Worker (it needs a secure context: https, or http on localhost)')
  }
  const maxBodyBytes = options.maxBodyBytes ?? MAX_FUNCTION_BODY_BYTES
  const onMessage = (event: MessageEvent<BridgeRequest>): void => {
    const port = event.ports[0]
    if (event.data?.type !== 'wasmesh-fn-request' || port == null) {
      return
    }
    port.postMessage({ type: 'accepted' } satisfies BridgeReply)
    void answer(peer, event.data, maxBodyBytes).then(reply => {
      port.postMessage(reply, [reply.body])
      port.close()
    })
  }
  container.addEventListener('message', onMessage)
  const registration = await container.register(options.serviceWorkerUrl ?? './fn-sw.js', { scope: options.scope ?? './', type: 'module' })
  if (container.controller == null) {
    // the worker claims open tabs when it activates
    await new Promise<void>(resolve => { container.addEventListener('controllerchange', () => { resolve() }, { once: true }) })
  }
  return { registration, stop: () => { container.removeEventListener('message', onMessage) } }
}

async function answer (peer: Peer, request: BridgeRequest, maxBodyBytes: number): Promise<Extract<BridgeReply, { type: 'response' }>> {
  const encoder = new TextEncoder()
  const plain = (status: number, text: string): Extract<BridgeReply, { type: 'response' }> => ({ type: 'response', status, headers: [['content-type', 'text/plain; charset=utf-8']], body: encoder.encode(text).buffer })
  const url = new URL(request.url, 'http://site')
  const route = parseFunctionRoute(url.pathname)
  if (route == null) {
    return plain(400, 'bad request: expected fn/<owner peer id>/<name>/<path>, percent-encoded UTF-8\n')
  }
  if (request.body.byteLength > maxBodyBytes) {
    return plain(413, `request body over ${maxBodyBytes} bytes\n`)
  }
  try {
    const result = await peer.call(route.address, { method: request.method, path: route.path, query: url.search.slice(1), headers: request.headers, body: new Uint8Array(request.body) })
    return { type: 'response', status: result.status, headers: responseHeaders(result), body: result.body.slice().buffer }
  } catch (err) {
    const failure = httpFailure(err)
    return { type: 'response', status: failure.status, headers: failure.headers, body: encoder.encode(failure.body).buffer }
  }
}
