/**
 * The Service Worker of "front end as back end": it answers the site's
 * `fetch('fn/<owner>/<name>/…')` (under its scope) by handing the request to
 * a tab of the site whose peer calls the function on the mesh
 * (web/functions-bridge.ts), over a MessageChannel. The peer lives in the
 * page, not here: a Service Worker can be stopped at any moment.
 *
 * Self-contained on purpose (no imports): it is served as one file at the
 * site's root (the page build emits it as `fn-sw.js`; the package ships it as
 * `dist/web/functions-sw.js`).
 */

/** The parts of the Service Worker global scope used here (the DOM lib has no types for it). */
interface SwClient { id: string, type: string, postMessage: (message: unknown, transfer: Transferable[]) => void }
interface SwFetchEvent extends Event { request: Request, clientId: string, respondWith: (response: Promise<Response>) => void }
interface SwExtendableEvent extends Event { waitUntil: (promise: Promise<unknown>) => void }
interface SwScope {
  registration: { scope: string }
  location: Location
  clients: { claim: () => Promise<void>, get: (id: string) => Promise<SwClient | undefined>, matchAll: (options: { type: 'window' }) => Promise<SwClient[]> }
  skipWaiting: () => Promise<void>
  addEventListener: (type: string, listener: (event: never) => void) => void
}

const sw = globalThis as unknown as SwScope

/** How long a tab has to say it took a request before the next tab is asked: a tab without a peer never answers. */
const ACCEPT_TIMEOUT_MS = 1_500
/** Longest a call may take once a tab took it. */
const CALL_TIMEOUT_MS = 120_000
/** Seconds a client is told to wait when no tab with a peer is open. */
const RETRY_AFTER_S = 5

/** A request as the bridge receives it. */
export interface BridgeRequest {
  type: 'wasmesh-fn-request'
  method: string
  /** The path below the Service Worker's scope, from `/fn/`, with the query. */
  url: string
  headers: Array<[string, string]>
  body: ArrayBuffer
}

/** What the bridge answers on the port: first `accepted`, then `response`. */
export type BridgeReply = { type: 'accepted' } | { type: 'response', status: number, headers: Array<[string, string]>, body: ArrayBuffer }

sw.addEventListener('install', (event: SwExtendableEvent) => { event.waitUntil(sw.skipWaiting()) })
// control the open tabs at once: the tab that registered us should not need a reload
sw.addEventListener('activate', (event: SwExtendableEvent) => { event.waitUntil(sw.clients.claim()) })

sw.addEventListener('fetch', (event: SwFetchEvent) => {
  const url = new URL(event.request.url)
  const scope = new URL(sw.registration.scope).pathname
  if (url.origin !== sw.location.origin || !url.pathname.startsWith(`${scope}fn/`)) {
    return
  }
  event.respondWith(forward(event, `/${url.pathname.slice(scope.length)}${url.search}`))
})

async function forward (event: SwFetchEvent, url: string): Promise<Response> {
  const body = await event.request.arrayBuffer()
  const headers: Array<[string, string]> = []
  event.request.headers.forEach((value, name) => { headers.push([name, value]) })
  // the tab that asked first, then every other tab of the site
  const requester = event.clientId !== '' ? await sw.clients.get(event.clientId) : undefined
  const others = (await sw.clients.matchAll({ type: 'window' })).filter(client => client.id !== requester?.id)
  for (const client of requester != null ? [requester, ...others] : others) {
    const reply = await ask(client, { type: 'wasmesh-fn-request', method: event.request.method, url, headers, body: body.slice(0) })
    if (reply != null) {
      return new Response(reply.status === 204 || reply.status === 304 ? null : reply.body, { status: reply.status, headers: reply.headers })
    }
  }
  return new Response('no open tab of this site has a wasmesh peer to call the function with\n', {
    status: 503,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'retry-after': String(RETRY_AFTER_S), 'x-wasmesh-error': 'NoWorkersError' }
  })
}

/** Hands the request to one tab; undefined when it does not take it in time. */
async function ask (client: SwClient, request: BridgeRequest): Promise<Extract<BridgeReply, { type: 'response' }> | undefined> {
  const channel = new MessageChannel()
  return new Promise(resolve => {
    let timer = setTimeout(() => { done(undefined) }, ACCEPT_TIMEOUT_MS)
    const done = (reply: Extract<BridgeReply, { type: 'response' }> | undefined): void => {
      clearTimeout(timer)
      channel.port1.close()
      resolve(reply)
    }
    channel.port1.onmessage = (message: MessageEvent<BridgeReply>) => {
      if (message.data.type === 'accepted') {
        clearTimeout(timer)
        timer = setTimeout(() => {
          done({ type: 'response', status: 504, headers: [['content-type', 'text/plain; charset=utf-8']], body: new TextEncoder().encode('the tab took the request but did not answer in time\n').buffer })
        }, CALL_TIMEOUT_MS)
      } else {
        done(message.data)
      }
    }
    client.postMessage(request, [channel.port2, request.body])
  })
}
