/**
 * The wasmesh page. This module stays small; libp2p, Helia and the runtime
 * load lazily from ./index.ts so the first paint does not wait for them.
 *
 * Query parameters: `?bootstrap=<multiaddr>` (repeatable) overrides
 * config.json; `?contribute=N` switches contributing on with N threads.
 *
 * Rendering is coalesced: events only mark parts of the page dirty, and a
 * flush redraws them at most once per frame, so a tab serving many jobs a
 * second spends its time on the jobs, not on redrawing the same peer list.
 */
import { enableApps, wireApps, type AppRunState } from './apps-panel.ts'
import type { AdvertContent, MapResult, Peer, PeerCapacity, RunResult } from '../../web/index.ts'
import type { PeerInternals } from '../../web/create-peer.ts'
import type * as SdkModule from '../../web/index.ts'

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
  /** The batch shown in the Run card, updated as its results arrive. */
  batch?: BatchState
}

export interface BatchRow {
  index: number
  /** The input line; unknown for a batch this page did not start. */
  input?: string
  state: 'pending' | 'ok' | 'error'
  output?: string
  worker?: string
  job?: string
  verified?: boolean
  /** Read back from the result store: finished before a reload, not run again. */
  resumed?: boolean
  error?: string
}

export interface BatchState {
  id: string
  module: string
  state: 'running' | 'ok' | 'error'
  total: number
  done: number
  failed: number
  /** Jobs that had finished before the reload this run resumed from; undefined for a fresh batch. */
  resumedFrom?: number
  rows: BatchRow[]
  /** Why the batch could not start or stopped. */
  error?: string
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

const DEMOS: Record<string, { file: string, input: string, lines: string }> = {
  echo: { file: 'demo/echo.wasm', input: 'hello from wasmesh', lines: 'alpha\nbravo\ncharlie\ndelta\necho' },
  spin: { file: 'demo/spin.wasm', input: '2000', lines: '200\n400\n600\n800\n1000' }
}

let peer: Peer | undefined
let served = 0
let chosenFile: { name: string, bytes: Uint8Array } | undefined
/** Whether this tab has a relayed WebRTC address; recomputed on address changes only. */
let reachable = false

type Part = 'self' | 'peers' | 'batch'
const dirty = new Set<Part>()
let frame: number | undefined
let timer: ReturnType<typeof setTimeout> | undefined

/** Marks parts of the page for the next flush, which runs at most once per frame. */
function invalidate (...parts: Part[]): void {
  for (const part of parts) {
    dirty.add(part)
  }
  if (timer != null) {
    return
  }
  // rAF never fires in a hidden tab, and contributing tabs are often hidden: a timer backs it up
  frame = document.hidden ? undefined : requestAnimationFrame(flush)
  timer = setTimeout(flush, 100)
}

function flush (): void {
  if (frame != null) {
    cancelAnimationFrame(frame)
  }
  clearTimeout(timer)
  frame = timer = undefined
  const parts = new Set(dirty)
  dirty.clear()
  if (parts.has('self')) {
    renderSelf()
  }
  if (parts.has('peers')) {
    renderPeers()
  }
  if (parts.has('batch')) {
    renderBatch()
  }
}

/** Sets text only when it changed: an unchanged write still costs style and layout. */
function setText (node: HTMLElement, text: string): void {
  if (node.textContent !== text) {
    node.textContent = text
  }
}

function el<K extends keyof HTMLElementTagNameMap> (tag: K, className = '', text = ''): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  node.className = className
  node.textContent = text
  return node
}

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

/** Rendered peer rows by peer id, with the key they were drawn from: unchanged peers keep their element. */
let peerRows = new Map<string, { key: string, li: HTMLLIElement }>()

function renderPeers (): void {
  if (peer == null) {
    return
  }
  const self = peer.id
  const peers: PeerRow[] = peer.peers().filter(p => p.peerId !== self)
  const own = peer.localAdvert()
  if (own != null) {
    peers.unshift({ peerId: self, advert: own, seenAt: Date.now() })
  }
  const list = $('peers')
  setText($('peer-count'), String(peers.length))
  if (peers.length === 0) {
    if (peerRows.size > 0 || list.children.length === 0) {
      list.replaceChildren(el('li', 'empty', 'No peer has advertised capacity yet.'))
    }
    peerRows = new Map()
    return
  }
  const next = new Map<string, { key: string, li: HTMLLIElement }>()
  for (const p of peers) {
    const { advert } = p
    const key = `${advert.platform} ${advert.slots.free}/${advert.slots.total} ${advert.memoryBytes} ${advert.cached.length} ${advert.version}`
    const old = peerRows.get(p.peerId)
    next.set(p.peerId, old?.key === key ? old : { key, li: peerRow(p, p.peerId === self) })
  }
  peerRows = next
  const rows = [...next.values()].map(row => row.li)
  if (rows.length !== list.children.length || rows.some((li, i) => list.children[i] !== li)) {
    list.replaceChildren(...rows)
  }
}

/** A peer as listed: what it advertises (our own row has no seq or interval yet). */
type PeerRow = Omit<PeerCapacity, 'advert'> & { advert: AdvertContent }

function peerRow (p: PeerRow, self: boolean): HTMLLIElement {
  const { advert } = p
  const li = el('li')
  li.dataset.peerId = p.peerId
  li.dataset.platform = advert.platform
  const icon = el('span', `platform ${advert.platform}`, advert.platform === 'browser' ? 'tab' : 'node')
  const id = el('code', 'mono', short(p.peerId))
  id.title = p.peerId
  const who = el('div', 'who')
  who.append(id)
  if (self) {
    who.append(el('span', 'you', 'this tab'))
  }
  const slots = el('div', 'slots')
  const total = advert.slots.total
  const busy = total - advert.slots.free
  for (let i = 0; i < Math.min(total, 16); i++) {
    slots.append(el('span', i < busy ? 'cell busy' : 'cell'))
  }
  slots.append(el('span', 'muted', total === 0 ? 'not contributing' : `${advert.slots.free}/${total} free`))
  const meta = el('span', 'muted meta', `${Math.round(advert.memoryBytes / 2 ** 20)} MiB · ${advert.cached.length} cached · v${advert.version}`)
  li.append(icon, who, slots, meta)
  return li
}

/** Reads our addresses once per change (libp2p's self:peer:update), not on every render. */
function refreshAddresses (): void {
  if (peer == null) {
    return
  }
  reachable = peer.addresses().some(a => a.includes('/p2p-circuit/webrtc'))
  if (reachable) {
    debug.timings.reachable ??= performance.now()
  }
  invalidate('self')
}

function renderSelf (): void {
  if (peer == null) {
    return
  }
  const contribution = peer.contribution
  setText($('capacity'), contribution == null ? 'not contributing' : `${contribution.threads} thread${contribution.threads === 1 ? '' : 's'}, ${contribution.threads - contribution.running} free`)
  setText($('work-running'), String(contribution?.running ?? 0))
  setText($('work-served'), String(served))
  setText($('reachable'), reachable ? 'yes — relay reservation + WebRTC' : 'not yet (waiting for a relay reservation)')
  $<HTMLInputElement>('contribute-toggle').checked = contribution != null
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
    invalidate('self')
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

/** The module the Workload select names: a demo fetched from the page's origin, or the dropped file. */
async function chosenModule (demo: string): Promise<{ bytes: Uint8Array, name: string }> {
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
  return { bytes, name }
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
    const { bytes, name } = await chosenModule(demo)
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
  const { verifyReceipt } = await import('../../web/index.ts')
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

// ---------------------------------------------------------------------------
// Batches: the SDK stores a batch in IndexedDB before any job runs and each
// result as it is accepted, so after a reload the page resumes what is left.

const BATCH_ID = /^[A-Za-z0-9_.-]{1,128}$/
const MAX_BATCH_LINES = 1000
/** Jobs in flight at once: keeps a few workers busy without queueing the whole batch at one. */
const BATCH_CONCURRENCY = 4
/** localStorage prefix for what the SDK does not keep and the page shows: the module's name and the input lines. */
const BATCH_META = 'wasmesh-batch:'

interface BatchMeta {
  module: string
  /** The Workload select's value, restored on resume. */
  demo: string
  inputs: string[]
}

interface BatchView {
  state: BatchState
  controller: AbortController
  started: number
  /** One element per job, drawn again only when its row changed. */
  rows: HTMLLIElement[]
  changed: Set<number>
  /** The list still shows another batch's rows. */
  fresh: boolean
}

let batch: BatchView | undefined

function batchRunning (): boolean {
  return batch?.state.state === 'running'
}

function readMeta (id: string): BatchMeta | undefined {
  try {
    const meta = JSON.parse(localStorage.getItem(BATCH_META + id) ?? 'null') as BatchMeta | null
    return meta != null && Array.isArray(meta.inputs) ? meta : undefined
  } catch {
    return undefined
  }
}

function writeMeta (id: string, meta: BatchMeta | undefined): void {
  try {
    if (meta == null) {
      localStorage.removeItem(BATCH_META + id)
    } else {
      localStorage.setItem(BATCH_META + id, JSON.stringify(meta))
    }
  } catch {
    // storage full or blocked: the batch still runs and resumes, its rows just show no input
  }
}

/** One input per line; a trailing newline is not a job, an empty line in between is a mistake. */
function batchLines (text: string): string[] {
  const lines = text.split('\n').map(line => line.replace(/\r$/, ''))
  while (lines.length > 0 && (lines.at(-1) as string).trim() === '') {
    lines.pop()
  }
  if (lines.length === 0) {
    throw new UserError('Enter at least one input: each line is one job\'s stdin.')
  }
  const empty = lines.flatMap((line, i) => line.trim() === '' ? [i + 1] : [])
  if (empty.length > 0) {
    const which = empty.length > 5 ? `${empty.slice(0, 5).join(', ')}…` : empty.join(', ')
    throw new UserError(`Line${empty.length === 1 ? '' : 's'} ${which} ${empty.length === 1 ? 'is' : 'are'} empty: each line is one job's stdin. Remove empty lines.`)
  }
  if (lines.length > MAX_BATCH_LINES) {
    throw new UserError(`${lines.length} lines: a batch from the page takes at most ${MAX_BATCH_LINES}. For more, use \`wasmesh run <module> --inputs DIR\`.`)
  }
  return lines
}

function showBatchError (message: string | undefined): void {
  const box = $('batch-error')
  box.hidden = message == null
  box.textContent = message ?? ''
}

async function startBatch (): Promise<void> {
  if (peer == null || batchRunning()) {
    return
  }
  const p = peer
  showBatchError(undefined)
  const button = $<HTMLButtonElement>('batch-run')
  button.disabled = true
  try {
    const id = $<HTMLInputElement>('batch-name').value.trim()
    if (!BATCH_ID.test(id)) {
      throw new UserError('Name the batch with 1 to 128 letters, digits, \'-\', \'_\' or \'.\'.')
    }
    const inputs = batchLines($<HTMLTextAreaElement>('batch-inputs').value)
    const demo = $<HTMLSelectElement>('demo').value
    const { bytes, name } = await chosenModule(demo)
    if ((await p.listBatches()).some(stored => stored.id === id)) {
      throw new UserError(`A batch named "${id}" is stored already: pick another name.`)
    }
    const meta = { module: name, demo, inputs }
    writeMeta(id, meta)
    await driveBatch(id, meta, inputs.length, undefined, signal => p.batch(id, bytes, inputs, { concurrency: BATCH_CONCURRENCY, limits: { timeoutMs: 30_000 }, signal }))
  } catch (err) {
    showBatchError(err instanceof UserError ? err.message : `${(err as Error).name}: ${(err as Error).message}`)
  } finally {
    button.disabled = batchRunning()
  }
}

/** Shows batches a reload interrupted, and runs what is left of each. */
async function resumeStoredBatches (p: Peer): Promise<void> {
  let stored: Awaited<ReturnType<Peer['listBatches']>>
  try {
    stored = await p.listBatches()
  } catch (err) {
    showBatchError(`Could not read stored batches: ${(err as Error).message}`)
    return
  }
  for (const { id, total, done } of stored) {
    const meta = readMeta(id)
    // show the form as it was when the batch started
    const demo = $<HTMLSelectElement>('demo')
    if (meta != null && meta.demo in DEMOS) {
      demo.value = meta.demo
      demo.dispatchEvent(new Event('change'))
    }
    $<HTMLInputElement>('batch-name').value = id
    setMode('batch')
    if (meta != null) {
      $<HTMLTextAreaElement>('batch-inputs').value = meta.inputs.join('\n')
      countLines()
    }
    await driveBatch(id, meta, total, done, signal => p.resume(id, { concurrency: BATCH_CONCURRENCY, signal }))
  }
}

/** Runs a batch's results into the page until it ends or is discarded; a finished batch is forgotten. */
async function driveBatch (id: string, meta: BatchMeta | undefined, total: number, resumedFrom: number | undefined, results: (signal: AbortSignal) => AsyncGenerator<MapResult>): Promise<void> {
  const state: BatchState = {
    id,
    module: meta?.module ?? 'module stored with the batch',
    state: 'running',
    total,
    done: 0,
    failed: 0,
    resumedFrom,
    rows: Array.from({ length: total }, (_, index) => ({ index, input: meta?.inputs[index], state: 'pending' }))
  }
  const view: BatchView = { state, controller: new AbortController(), started: performance.now(), rows: state.rows.map(() => el('li')), changed: new Set(state.rows.map(row => row.index)), fresh: true }
  const { signal } = view.controller
  batch = view
  debug.batch = state
  $<HTMLButtonElement>('batch-run').disabled = true
  invalidate('batch')
  try {
    for await (const result of results(signal)) {
      if (signal.aborted) {
        break
      }
      const row = state.rows[result.index]
      if (row == null) {
        continue
      }
      if (result.ok) {
        const { result: run } = result
        Object.assign(row, { state: 'ok', output: run.text(), worker: run.worker, job: run.job.toString(), resumed: run.resumed, verified: await checkReceipt(run) })
        state.done++
      } else {
        const error = result.error as Error & { receipt?: { worker: string } }
        Object.assign(row, { state: 'error', error: `${error.name}: ${error.message}`, worker: error.receipt?.worker })
        state.failed++
      }
      view.changed.add(result.index)
      invalidate('batch')
    }
    if (!signal.aborted) {
      state.state = state.failed > 0 ? 'error' : 'ok'
    }
  } catch (err) {
    // the batch could not start (storing it, or its module, failed): keep it stored, a reload tries again
    if (!signal.aborted) {
      state.state = 'error'
      state.error = `${(err as Error).name}: ${(err as Error).message}`
    }
  } finally {
    // a finished or discarded batch has nothing left to resume
    if ((state.state !== 'running' && state.error == null) || signal.aborted) {
      await peer?.deleteBatch(id).catch(() => {})
      writeMeta(id, undefined)
    }
    $<HTMLButtonElement>('batch-run').disabled = batchRunning()
    invalidate('batch')
  }
}

function discardBatch (): void {
  const view = batch
  if (view == null) {
    return
  }
  batch = undefined
  debug.batch = undefined
  if (view.state.state === 'running') {
    view.controller.abort()
  } else {
    void peer?.deleteBatch(view.state.id).catch(() => {})
    writeMeta(view.state.id, undefined)
  }
  invalidate('batch')
}

function renderBatch (): void {
  const box = $('batch')
  if (batch == null) {
    box.hidden = true
    return
  }
  const { state } = batch
  box.hidden = false
  box.dataset.state = state.state
  setText($('batch-title'), `Batch "${state.id}"`)
  setText($('batch-module'), state.module)
  const finished = state.done + state.failed
  const progress = $<HTMLProgressElement>('batch-progress')
  progress.max = Math.max(1, state.total)
  progress.value = finished
  const seconds = ((performance.now() - batch.started) / 1000).toFixed(1)
  setText($('batch-status'), `${state.done}/${state.total} done${state.state === 'running' ? '' : ` · ${state.failed === 0 ? 'finished' : 'ended'} in ${seconds} s`}`)
  const failed = $('batch-failed')
  failed.hidden = state.failed === 0
  setText(failed, `${state.failed} failed`)
  const badge = $('batch-badge')
  const allVerified = state.rows.every(row => row.state !== 'ok' || row.verified === true)
  badge.dataset.verified = String(state.state === 'ok' && allVerified)
  setText(badge, state.state === 'running' ? `running · ${finished}/${state.total}` : state.state === 'ok' ? (allVerified ? '✓ all receipts verified' : '✗ not all verified') : state.error != null ? 'stopped' : 'ended with failures')
  $('batch-discard').hidden = state.state !== 'running' && state.error == null
  const note = $('batch-note')
  note.hidden = state.resumedFrom == null
  const n = state.resumedFrom ?? 0
  setText(note, `↻ Resumed after the reload: ${n} finished job${n === 1 ? '' : 's'} from before the reload came back from storage and ${n === 1 ? 'is' : 'are'} not run again.`)
  const message = $('batch-message')
  message.hidden = state.error == null
  setText(message, state.error ?? '')
  const list = $('batch-results')
  if (batch.fresh) {
    list.replaceChildren(...batch.rows)
    batch.fresh = false
  }
  for (const index of batch.changed) {
    drawBatchRow(batch.rows[index] as HTMLLIElement, state.rows[index] as BatchRow)
  }
  batch.changed.clear()
}

function drawBatchRow (li: HTMLLIElement, row: BatchRow): void {
  li.dataset.index = String(row.index)
  li.dataset.state = row.state
  li.dataset.resumed = String(row.resumed === true)
  const input = el('code', 'in', row.input ?? `job ${row.index + 1}`)
  input.title = row.input ?? ''
  const output = el('code', 'out', row.state === 'ok' ? (row.output ?? '').trimEnd() : row.state === 'error' ? row.error ?? 'failed' : 'queued')
  output.title = row.state === 'ok' ? row.output ?? '' : row.error ?? ''
  const worker = el('span', 'by', row.worker != null ? `…${row.worker.slice(-6)}` : '')
  worker.title = row.worker ?? ''
  const badge = el('span', 'badge', row.state === 'ok' ? (row.verified === true ? '✓ verified' : '✗ not verified') : '')
  badge.dataset.verified = String(row.verified === true)
  const tags = el('span', 'tags')
  tags.append(badge)
  if (row.resumed === true) {
    const tag = el('span', 'tag', 'from before reload')
    tag.title = 'Accepted before the reload and read back from storage: not run again'
    tags.append(tag)
  }
  li.replaceChildren(el('span', 'n', `#${row.index + 1}`), input, el('span', 'arrow', '→'), output, worker, tags)
}

type Mode = 'single' | 'batch'

function setMode (mode: Mode): void {
  $<HTMLInputElement>(`mode-${mode}`).checked = true
  $('single-fields').hidden = mode !== 'single'
  $('batch-fields').hidden = mode !== 'batch'
  if (mode === 'batch') {
    const demo = $<HTMLSelectElement>('demo').value
    const inputs = $<HTMLTextAreaElement>('batch-inputs')
    if (inputs.value.trim() === '') {
      inputs.value = DEMOS[demo]?.lines ?? ''
      countLines()
    }
    const name = $<HTMLInputElement>('batch-name')
    if (name.value.trim() === '') {
      name.value = `${demo === 'file' ? 'wasm' : demo}-${Date.now().toString(36)}`
    }
  }
}

function countLines (): void {
  const lines = $<HTMLTextAreaElement>('batch-inputs').value.split('\n').filter(line => line.trim() !== '').length
  setText($('batch-count'), `${lines} job${lines === 1 ? '' : 's'}`)
}

function wireForm (): void {
  const demo = $<HTMLSelectElement>('demo')
  demo.addEventListener('change', () => {
    const spec = DEMOS[demo.value]
    $('drop').hidden = demo.value !== 'file'
    if (spec != null) {
      $<HTMLTextAreaElement>('input').value = spec.input
      // replace the example lines, not lines the user typed
      const inputs = $<HTMLTextAreaElement>('batch-inputs')
      if (inputs.value.trim() === '' || Object.values(DEMOS).some(d => d.lines === inputs.value)) {
        inputs.value = spec.lines
        countLines()
      }
    }
  })
  for (const mode of ['single', 'batch'] as const) {
    $(`mode-${mode}`).addEventListener('change', () => { setMode(mode) })
  }
  $('batch-inputs').addEventListener('input', countLines)
  $('batch-discard').addEventListener('click', discardBatch)
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
    void ($<HTMLInputElement>('mode-batch').checked ? startBatch() : runJob())
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
    sdk = await import('../../web/index.ts')
    debug.timings.sdkLoaded = performance.now()
  } catch (err) {
    fail(`could not load the wasmesh SDK: ${(err as Error).message}`)
    return
  }
  const { peerInternals } = await import('../../web/create-peer.ts')
  try {
    peer = await sdk.createPeer({
      bootstrap,
      onCreated: created => {
        created.addEventListener('connections', event => {
          setText($('connections'), String(event.detail))
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
  $<HTMLButtonElement>('batch-run').disabled = false
  enableApps()
  // events only mark what changed; flush() draws it once per frame
  peer.addEventListener('peers', () => { invalidate('peers') })
  peer.addEventListener('contribution', () => { invalidate('self', 'peers') })
  peer.addEventListener('work:end', () => { served++; invalidate('self') })
  debug.internals?.libp2p.addEventListener('self:peer:update', refreshAddresses)
  refreshAddresses()
  invalidate('peers')
  const resuming = resumeStoredBatches(peer)
  if (contributeThreads != null) {
    await setContribution(true, contributeThreads)
  }
  await resuming
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
