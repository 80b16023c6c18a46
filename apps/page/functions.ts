/**
 * The "front end as back end" demo: a static page whose API, `fetch('fn/…')`,
 * is answered by the mesh through this tab's peer and the functions Service
 * Worker (SDK: `serveFunctions`). `?fn=<owner>/<name>` names the function;
 * without it, the newest function named `markdown` the mesh knows.
 * `?contribute=N` also lends this tab to the mesh, so another tab's calls
 * can run here.
 */
import { bootstrapAddresses, contributeThreads } from './config.ts'
import { $ } from './dom.ts'
import type * as Sdk from '../../web/index.ts'

/** What the demo exposes for tests and the curious: the peer, the function and the last answer. */
export interface FunctionsDemoState {
  peer?: Sdk.Peer
  address?: string
  ready?: boolean
  last?: { status: number, worker: string, verified: boolean, html: string }
  error?: string
}

declare global {
  interface Window { wasmeshFunctions: FunctionsDemoState }
}

const state: FunctionsDemoState = {}
window.wasmeshFunctions = state

/** Only these elements and attributes of a worker's answer reach the page: the worker is a stranger. */
const ALLOWED = new Set(['H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'P', 'UL', 'OL', 'LI', 'STRONG', 'EM', 'CODE', 'PRE', 'BLOCKQUOTE', 'A', 'HR', 'BR'])

function sanitize (html: string): DocumentFragment {
  const parsed = new DOMParser().parseFromString(html, 'text/html')
  const copy = (from: Node, into: Node): void => {
    for (const child of from.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) {
        into.appendChild(document.createTextNode(child.textContent ?? ''))
      } else if (child instanceof Element && ALLOWED.has(child.tagName)) {
        const element = document.createElement(child.tagName)
        const href = child.getAttribute('href')
        if (child.tagName === 'A' && href != null && /^(https?:|#|\/)/.test(href)) {
          element.setAttribute('href', href)
          element.setAttribute('rel', 'noopener noreferrer')
        }
        copy(child, element)
        into.appendChild(element)
      } else if (child instanceof Element) {
        copy(child, into) // drop the tag, keep its text
      }
    }
  }
  const fragment = document.createDocumentFragment()
  copy(parsed.body, fragment)
  return fragment
}

function status (kind: 'loading' | 'connecting' | 'ok' | 'error', text: string): void {
  $('net-status').dataset.state = kind
  $('net-status-text').textContent = text
}

async function resolveAddress (peer: Sdk.Peer): Promise<string> {
  const given = new URLSearchParams(location.search).get('fn')
  if (given != null) {
    return given
  }
  for (let waited = 0; waited < 30_000; waited += 250) {
    const found = peer.functions().find(fn => fn.manifest.name === 'markdown')
    if (found != null) {
      return found.address
    }
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  throw new Error('no function named markdown is known on this mesh: deploy one with `wasmesh deploy build/wasm/markdown.wasm --name markdown`')
}

async function render (sdk: typeof Sdk, address: string): Promise<void> {
  const source = ($('source') as HTMLTextAreaElement).value
  const response = await fetch(`fn/${address}/render`, { method: 'POST', body: source, headers: { 'content-type': 'text/markdown' } })
  const text = await response.text()
  const worker = response.headers.get('x-wasmesh-worker') ?? ''
  const receipt = response.headers.get('x-wasmesh-receipt')
  let verified = false
  if (receipt != null) {
    try {
      await sdk.verifyReceipt(sdk.decodeSignedReceipt(sdk.receiptHeaderBytes(receipt)), { worker })
      verified = true
    } catch {
      verified = false
    }
  }
  state.last = { status: response.status, worker, verified, html: text }
  if (!response.ok) {
    $('proof').textContent = `HTTP ${response.status}: ${text}`
    return
  }
  $('preview').replaceChildren(sanitize(text))
  $('proof').textContent = `HTTP ${response.status}, computed by ${worker}${verified ? ', signed receipt verified' : ', receipt NOT verified'} (version ${response.headers.get('x-wasmesh-function-version') ?? '?'})`
}

async function main (): Promise<void> {
  status('connecting', 'Connecting…')
  const bootstrap = await bootstrapAddresses()
  const sdk = await import('../../web/index.ts')
  const threads = contributeThreads()
  // in memory: two demo tabs of one browser must be two peers
  const peer = await sdk.createPeer({ bootstrap, storage: false, ...(threads != null ? { contribute: { threads } } : {}) })
  state.peer = peer
  await sdk.serveFunctions(peer)
  status('connecting', 'Looking for the function…')
  const address = await resolveAddress(peer)
  state.address = address
  $('fn-address').textContent = address
  state.ready = true
  status('ok', `Joined as ${peer.id.slice(-8)}`)
  let timer: ReturnType<typeof setTimeout> | undefined
  const update = (): void => {
    render(sdk, address).catch((err: Error) => { $('proof').textContent = `error: ${err.message}` })
  }
  $('source').addEventListener('input', () => {
    clearTimeout(timer)
    timer = setTimeout(update, 300)
  })
  update()
}

main().catch((err: Error) => {
  state.error = err.message
  status('error', 'Not connected')
  $('proof').textContent = err.message
})
