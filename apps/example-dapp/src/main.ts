/**
 * The example dApp: joins the wasmesh network, runs echo.wasm on whichever
 * peer has capacity, checks the signed receipt, and offers visitors the
 * opt-in contribute switch.
 *
 * Bootstrap nodes: `?bootstrap=<multiaddr>` (repeatable), else config.json
 * next to the page: `{ "bootstrap": ["/dns4/…/tcp/443/wss/p2p/…"] }`.
 */
import { createPeer, defineContributeElement, verifyReceipt, type Peer } from 'wasmesh'

defineContributeElement()

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T

function setStatus (text: string, state: 'connecting' | 'connected' | 'error'): void {
  $('status').textContent = text
  $('status').dataset.state = state
}

async function bootstrapAddrs (): Promise<string[]> {
  const given = new URLSearchParams(location.search).getAll('bootstrap')
  if (given.length > 0) {
    return given
  }
  const response = await fetch('config.json', { cache: 'no-store' })
  if (!response.ok) {
    throw new Error('no bootstrap node: add ?bootstrap=<multiaddr> to the URL, or serve a config.json next to the page')
  }
  const { bootstrap } = await response.json() as { bootstrap: string[] }
  return bootstrap
}

async function runJob (peer: Peer, module: Uint8Array): Promise<void> {
  const result = $('result')
  result.hidden = false
  result.dataset.state = 'running'
  $('output').textContent = 'Running…'
  try {
    const { text, worker, receipt, receipts, job } = await peer.run({
      module,
      input: $<HTMLInputElement>('input').value,
      limits: { timeoutMs: 10_000 },
      signal: AbortSignal.timeout(60_000)
    })
    // peer.run already checked it; anyone can check it again from the signed bytes alone
    const [first] = receipts
    const verified = first != null && (await verifyReceipt(first.signed, { job, worker })).receipt.worker === worker
    $('output').textContent = text()
    $('worker').textContent = worker
    $('exec').textContent = `${receipt.stats.execMs.toFixed(1)} ms`
    $('verified').textContent = verified ? 'signature verified ✓' : 'not verified'
    $('verified').dataset.verified = String(verified)
    result.dataset.state = 'ok'
  } catch (err) {
    // errors carry a stable name: TimeLimitError, NoWorkersError, …
    $('output').textContent = `${(err as Error).name}: ${(err as Error).message}`
    result.dataset.state = 'error'
  }
}

async function main (): Promise<void> {
  const module = new Uint8Array(await (await fetch('echo.wasm')).arrayBuffer())
  const peer = await createPeer({ bootstrap: await bootstrapAddrs() })
  setStatus(`Connected as ${peer.id}`, 'connected')
  const showWorkers = (): void => { $('workers').textContent = String(peer.peers().filter(p => p.peerId !== peer.id).length) }
  peer.addEventListener('peers', showWorkers)
  showWorkers()

  // consent first: the element contributes only once the visitor switches it on
  document.querySelector('wasmesh-contribute')!.peer = peer

  $('run-form').addEventListener('submit', event => {
    event.preventDefault()
    void runJob(peer, module)
  })
  $<HTMLButtonElement>('run').disabled = false
  window.addEventListener('pagehide', () => { void peer.stop() })
}

main().catch((err: unknown) => { setStatus(`Could not join the network: ${(err as Error).message}`, 'error') })
