/**
 * The wasmesh page. This module stays small; libp2p, Helia and the runtime
 * load lazily from ./index.ts so the first paint does not wait for them.
 *
 * Query parameters: `?bootstrap=<multiaddr>` (repeatable) overrides
 * config.json; `?contribute=N` switches contributing on with N threads.
 */
import { enableApps, wireApps, type AppRunState } from './apps-panel.ts'
import type { AdvertContent, Peer, PeerCapacity, RunResult } from './index.ts'
import type { PeerInternals } from './create-peer.ts'
import type * as SdkModule from './index.ts'

type Sdk = typeof SdkModule

interface Timings {
  /** ms since navigation start */
  sdkLoaded?: number
  connected?: number
  reachable?: number
  contributing?: number
}

export interface DebugHandle {
  peer?: Peer
  internals?: PeerInternals
  timings: Timings
  error?: string
  lastResult?: { worker: string, durationMs: number, output: string, verified: boolean }
  /** The last app run from the Apps card, updated as its jobs arrive. */
  app?: AppRunState
}

declare global {
  interface Window { wasmesh: DebugHandle }
}

const debug: DebugHandle = { timings: {} }
window.wasmesh = debug

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id)
  if (el == null) {
    throw new Error(`#${id} missing`)
  }
  return el as T
}

const DEMOS: Record<string, { file: string, input: string }> = {
  echo: { file: 'demo/echo.wasm', input: 'hello from wasmesh' },
  spin: { file: 'demo/spin.wasm', input: '2000' }
}

let peer: Peer | undefined
let served = 0
let chosenFile: { name: string, bytes: Uint8Array } | undefined

function setStatus (state: 'loading' | 'connecting' | 'connected' | 'error', text: string): void {
  $('status').dataset.state = state
  $('status-text').textContent = text
}

function showBanner (message: string | undefined): void {
  const banner = $('banner')
  banner.hidden = message == null
  banner.textContent = message ?? ''
}

function short (id: string): string {
  return id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id
}

async function bootstrapList (): Promise<string[]> {
  const params = new URLSearchParams(location.search)
  const given = params.getAll('bootstrap').flatMap(v => v.split(',')).map(v => v.trim()).filter(v => v !== '')
  if (given.length > 0) {
    return given
  }
  let response: Response
  try {
    response = await fetch(new URL('config.json', location.href), { cache: 'no-store' })
  } catch (err) {
    throw new Error(`could not load config.json: ${(err as Error).message}. Pass ?bootstrap=<multiaddr>.`, { cause: err })
  }
  if (!response.ok) {
    throw new Error(`config.json is missing (HTTP ${response.status}): serve the page with \`wasmesh bootstrap --http-port\`, or pass ?bootstrap=<multiaddr>.`)
  }
  const config = await response.json() as { bootstrap?: unknown }
  const list = Array.isArray(config.bootstrap) ? config.bootstrap.map(String) : []
  if (list.length === 0) {
    throw new Error('config.json lists no bootstrap node; pass ?bootstrap=<multiaddr>.')
  }
  return list
}

/** Browsers can only dial WebSocket (and WebRTC/WebTransport) addresses. */
function browserDialable (addr: string): boolean {
  return /\/(ws|wss|tls\/ws|webtransport|webrtc-direct)(\/|$)/.test(addr)
}

function renderPeers (): void {
  if (peer == null) {
    return
  }
  const peers: PeerRow[] = peer.peers().filter(p => p.peerId !== peer?.id)
  const own = peer.localAdvert()
  if (own != null) {
    peers.unshift({ peerId: peer.id, advert: own, seenAt: Date.now() })
  }
  const list = $('peers')
  $('peer-count').textContent = String(peers.length)
  list.replaceChildren()
  if (peers.length === 0) {
    const li = document.createElement('li')
    li.className = 'empty'
    li.textContent = 'No peer has advertised capacity yet.'
    list.append(li)
    return
  }
  for (const p of peers) {
    list.append(peerRow(p, p.peerId === peer.id))
  }
}

/** A peer as listed: what it advertises (our own row has no seq or interval yet). */
type PeerRow = Omit<PeerCapacity, 'advert'> & { advert: AdvertContent }

function peerRow (p: PeerRow, self: boolean): HTMLLIElement {
  const { advert } = p
  const li = document.createElement('li')
  li.dataset.peerId = p.peerId
  li.dataset.platform = advert.platform
  const icon = document.createElement('span')
  icon.className = `platform ${advert.platform}`
  icon.textContent = advert.platform === 'browser' ? 'tab' : 'node'
  const id = document.createElement('code')
  id.className = 'mono'
  id.title = p.peerId
  id.textContent = short(p.peerId)
  const who = document.createElement('div')
  who.className = 'who'
  who.append(id)
  if (self) {
    const you = document.createElement('span')
    you.className = 'you'
    you.textContent = 'this tab'
    who.append(you)
  }
  const slots = document.createElement('div')
  slots.className = 'slots'
  const total = advert.slots.total
  const busy = total - advert.slots.free
  for (let i = 0; i < Math.min(total, 16); i++) {
    const cell = document.createElement('span')
    cell.className = i < busy ? 'cell busy' : 'cell'
    slots.append(cell)
  }
  const label = document.createElement('span')
  label.className = 'muted'
  label.textContent = total === 0 ? 'not contributing' : `${advert.slots.free}/${total} free`
  slots.append(label)
  const meta = document.createElement('span')
  meta.className = 'muted meta'
  meta.textContent = `${Math.round(advert.memoryBytes / 2 ** 20)} MiB · ${advert.cached.length} cached · v${advert.version}`
  li.append(icon, who, slots, meta)
  return li
}

function renderSelf (): void {
  if (peer == null) {
    return
  }
  const contribution = peer.contribution
  $('capacity').textContent = contribution == null ? 'not contributing' : `${contribution.threads} thread${contribution.threads === 1 ? '' : 's'}, ${contribution.threads - contribution.running} free`
  $('work-running').textContent = String(contribution?.running ?? 0)
  $('work-served').textContent = String(served)
  const addrs = peer.addresses()
  const webrtc = addrs.some(a => a.includes('/p2p-circuit/webrtc'))
  $('reachable').textContent = webrtc ? 'yes — relay reservation + WebRTC' : 'not yet (waiting for a relay reservation)'
  if (webrtc && debug.timings.reachable == null) {
    debug.timings.reachable = performance.now()
  }
  const toggle = $<HTMLInputElement>('contribute-toggle')
  toggle.checked = contribution != null
}

async function setContribution (on: boolean, threads: number): Promise<void> {
  if (peer == null) {
    return
  }
  const toggle = $<HTMLInputElement>('contribute-toggle')
  toggle.disabled = true
  try {
    if (on) {
      await peer.contribute({ threads })
      debug.timings.contributing ??= performance.now()
    } else {
      await peer.stopContributing()
    }
  } catch (err) {
    showBanner(`Could not ${on ? 'start' : 'stop'} contributing: ${(err as Error).message}`)
  } finally {
    toggle.disabled = false
    renderSelf()
  }
}

function isWasm (bytes: Uint8Array): boolean {
  return bytes.byteLength >= 8 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d
}

function showResult (state: 'running' | 'ok' | 'error', title: string, output: string, details?: { worker?: string, time?: string, job?: string, verified?: boolean }): void {
  const box = $('result')
  box.hidden = false
  box.dataset.state = state
  $('result-title').textContent = title
  $('result-output').textContent = output
  $('result-worker').textContent = details?.worker ?? '—'
  $('result-time').textContent = details?.time ?? '—'
  $('result-job').textContent = details?.job ?? '—'
  const badge = $('result-verified')
  badge.dataset.verified = String(details?.verified ?? false)
  badge.textContent = details?.verified === true ? '✓ receipt verified' : state === 'running' ? 'running…' : details?.verified === false ? '✗ not verified' : ''
}

async function runJob (): Promise<void> {
  if (peer == null) {
    return
  }
  const demo = $<HTMLSelectElement>('demo').value
  const input = $<HTMLTextAreaElement>('input').value
  const button = $<HTMLButtonElement>('run')
  button.disabled = true
  showResult('running', 'Running…', '')
  try {
    let bytes: Uint8Array
    let name: string
    if (demo === 'file') {
      if (chosenFile == null) {
        throw new UserError('Choose or drop a .wasm file first.')
      }
      ({ bytes, name } = chosenFile)
    } else {
      const spec = DEMOS[demo] as { file: string }
      const response = await fetch(new URL(spec.file, location.href))
      if (!response.ok) {
        throw new UserError(`could not load the demo module ${spec.file} (HTTP ${response.status})`)
      }
      bytes = new Uint8Array(await response.arrayBuffer())
      name = spec.file.split('/').pop() ?? spec.file
    }
    if (!isWasm(bytes)) {
      throw new UserError(`${name} is not a WebAssembly module (it does not start with the \\0asm magic bytes).`)
    }
    showResult('running', `Running ${name}…`, '')
    const result = await peer.run({ module: bytes, input, limits: { timeoutMs: 30_000 }, signal: AbortSignal.timeout(60_000) })
    const verified = await checkReceipt(result)
    const worker = result.worker
    const where = peer.peers().find(p => p.peerId === worker)?.advert.platform
    showResult('ok', `${name} finished`, result.text(), {
      worker: `${worker}${where != null ? ` (${where === 'browser' ? 'a browser tab' : 'a Node peer'})` : ''}`,
      time: `${result.durationMs.toFixed(0)} ms round trip · ${result.receipt.stats.execMs.toFixed(1)} ms exec${result.receipt.stats.moduleCached ? ' · module cached' : ''}`,
      job: result.job.toString(),
      verified
    })
    debug.lastResult = { worker, durationMs: result.durationMs, output: result.text(), verified }
  } catch (err) {
    const error = err as Error & { receipt?: { worker: string } }
    const name = err instanceof UserError ? 'Cannot run' : error.name
    showResult('error', name === 'TimeoutError' ? 'Timed out' : name, error.message, { worker: error.receipt?.worker })
  } finally {
    button.disabled = false
  }
}

class UserError extends Error {}

async function checkReceipt (result: RunResult): Promise<boolean> {
  const { verifyReceipt } = await import('./index.ts')
  const signed = result.receipts[0]?.signed
  if (signed == null) {
    return false
  }
  try {
    await verifyReceipt(signed, { job: result.job, worker: result.worker })
    return true
  } catch {
    return false
  }
}

function wireForm (): void {
  const demo = $<HTMLSelectElement>('demo')
  demo.addEventListener('change', () => {
    const spec = DEMOS[demo.value]
    $('drop').hidden = demo.value !== 'file'
    if (spec != null) {
      $<HTMLTextAreaElement>('input').value = spec.input
    }
  })
  const file = $<HTMLInputElement>('file')
  const take = async (f: File | undefined): Promise<void> => {
    if (f == null) {
      return
    }
    chosenFile = { name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) }
    $('file-name').textContent = `${f.name} (${f.size.toLocaleString()} bytes)`
  }
  file.addEventListener('change', () => { void take(file.files?.[0]) })
  const zone = $('dropzone')
  zone.addEventListener('dragover', event => { event.preventDefault(); zone.classList.add('over') })
  zone.addEventListener('dragleave', () => { zone.classList.remove('over') })
  zone.addEventListener('drop', event => {
    event.preventDefault()
    zone.classList.remove('over')
    demo.value = 'file'
    $('drop').hidden = false
    void take(event.dataTransfer?.files[0])
  })
  $('run-form').addEventListener('submit', event => {
    event.preventDefault()
    void runJob()
  })
  const toggle = $<HTMLInputElement>('contribute-toggle')
  const threads = $<HTMLInputElement>('threads')
  toggle.addEventListener('change', () => { void setContribution(toggle.checked, Number(threads.value) || 1) })
  threads.addEventListener('change', () => {
    if (toggle.checked) {
      void setContribution(true, Math.max(1, Number(threads.value) || 1))
    }
  })
}

async function main (): Promise<void> {
  wireForm()
  wireApps(() => peer, state => { debug.app = state })
  const params = new URLSearchParams(location.search)
  const threadsInput = $<HTMLInputElement>('threads')
  threadsInput.value = String(navigator.hardwareConcurrency > 0 ? navigator.hardwareConcurrency : 1)
  const contributeParam = params.get('contribute')
  const contributeThreads = contributeParam != null ? Math.max(1, Math.floor(Number(contributeParam)) || 1) : undefined
  if (contributeThreads != null) {
    threadsInput.value = String(contributeThreads)
  }

  setStatus('connecting', 'Connecting…')
  let bootstrap: string[]
  try {
    bootstrap = (await bootstrapList()).filter(browserDialable)
    if (bootstrap.length === 0) {
      throw new Error('none of the bootstrap addresses can be dialed from a browser (they need /ws or /wss)')
    }
  } catch (err) {
    fail((err as Error).message)
    return
  }
  $('bootstrap').textContent = bootstrap[0] ?? '—'
  $('bootstrap').title = bootstrap.join('\n')

  let sdk: Sdk
  try {
    sdk = await import('./index.ts')
    debug.timings.sdkLoaded = performance.now()
  } catch (err) {
    fail(`could not load the wasmesh SDK: ${(err as Error).message}`)
    return
  }
  const { peerInternals } = await import('./create-peer.ts')
  try {
    peer = await sdk.createPeer({
      bootstrap,
      onCreated: created => {
        created.addEventListener('connections', event => {
          $('connections').textContent = String(event.detail)
          if (event.detail > 0) {
            debug.timings.connected ??= performance.now()
          }
          if (created.status === 'started') {
            setStatus(event.detail > 0 ? 'connected' : 'connecting', event.detail > 0 ? 'Connected' : 'Reconnecting…')
          }
        })
        $('peer-id').textContent = created.id
      }
    })
  } catch (err) {
    fail(`${(err as Error).message}`)
    return
  }
  debug.peer = peer
  debug.internals = peerInternals(peer)
  internalsHook(peer)
  setStatus('connected', 'Connected')
  $<HTMLInputElement>('contribute-toggle').disabled = false
  $<HTMLButtonElement>('run').disabled = false
  enableApps()
  peer.addEventListener('peers', renderPeers)
  peer.addEventListener('contribution', () => { renderSelf(); renderPeers() })
  peer.addEventListener('work:end', () => { served++; renderSelf() })
  debug.internals?.libp2p.addEventListener('self:peer:update', renderSelf)
  renderSelf()
  renderPeers()
  if (contributeThreads != null) {
    await setContribution(true, contributeThreads)
  }
}

function internalsHook (p: Peer): void {
  window.addEventListener('pagehide', () => { void p.stop() })
}

function fail (message: string): void {
  setStatus('error', 'Offline')
  showBanner(message)
  debug.error = message
}

void main()
