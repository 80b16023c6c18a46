/**
 * The page's Apps card: runs the example apps (apps/) on the network with the
 * same drivers as `wasmesh app`. Fractal tiles are drawn as they arrive, each
 * framed in its worker's colour; the hash search and Monte Carlo show progress
 * and their answer.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { hashsearch, mandelbrot, montecarlo } from '../index.ts'
import { $, short, tail } from './dom.ts'
import { workerColour } from './palette.ts'
import type { AppName, AppRunState } from './state.ts'
import type { AppRunOptions, JobDone } from '../shared.ts'
import type { Peer } from '../../web/index.ts'

/** Vite emits each module (built by `npm run build:wasm`) as an asset and rewrites these URLs. */
const MODULES: Record<AppName, string> = {
  mandelbrot: new URL('../../build/wasm/mandelbrot.wasm', import.meta.url).href,
  hashsearch: new URL('../../build/wasm/hashsearch.wasm', import.meta.url).href,
  montecarlo: new URL('../../build/wasm/montecarlo.wasm', import.meta.url).href
}
const RUN: AppRunOptions = { map: { limits: { timeoutMs: 60_000 } } }

/** Wires the Apps card; `peer` returns the joined peer, or undefined before it joined. */
export function wireApps (peer: () => Peer | undefined, report: (state: AppRunState) => void): void {
  const select = $<HTMLSelectElement>('app')
  const show = (): void => {
    for (const name of Object.keys(MODULES)) {
      $(`app-options-${name}`).hidden = name !== select.value
    }
    $('fractal-wrap').hidden = select.value !== 'mandelbrot'
  }
  select.addEventListener('change', show)
  show()
  $('app-form').addEventListener('submit', event => {
    event.preventDefault()
    const p = peer()
    if (p != null) {
      void runApp(p, select.value as AppName, report)
    }
  })
}

export function enableApps (): void {
  $<HTMLButtonElement>('app-run').disabled = false
}

async function runApp (peer: Peer, app: AppName, report: (state: AppRunState) => void): Promise<void> {
  const button = $<HTMLButtonElement>('app-run')
  button.disabled = true
  const state: AppRunState = { app, state: 'running', done: 0, total: 0, workers: {} }
  const box = $('app-result')
  const render = (): void => {
    box.hidden = false
    box.dataset.state = state.state
    const progress = $<HTMLProgressElement>('app-progress')
    progress.max = Math.max(1, state.total)
    progress.value = state.done
    $('app-status').textContent = state.state === 'error' ? `${state.error ?? 'failed'}` : `${state.done}/${state.total} jobs${state.state === 'ok' ? ' — done' : ''}`
    $('app-summary').textContent = state.summary ?? ''
    renderLegend(state.workers, id => peer.peers().find(p => p.peerId === id)?.advert.platform)
    report({ ...state, workers: { ...state.workers } })
  }
  const onJob = (job: JobDone): void => {
    state.done = job.done
    state.total = job.total
    state.workers[job.worker] = (state.workers[job.worker] ?? 0) + 1
  }
  render()
  try {
    const response = await fetch(MODULES[app])
    if (!response.ok) {
      throw new Error(`could not load ${app}.wasm (HTTP ${response.status})`)
    }
    const module = new Uint8Array(await response.arrayBuffer())
    const started = performance.now()
    if (app === 'mandelbrot') {
      const options = { ...mandelbrot.MANDELBROT_DEFAULTS, tile: Number($<HTMLSelectElement>('mb-tile').value), maxIterations: Number($<HTMLInputElement>('mb-iterations').value) }
      state.total = mandelbrot.tiles(options).length
      const canvas = $<HTMLCanvasElement>('fractal')
      canvas.width = options.width
      canvas.height = options.height
      const context = canvas.getContext('2d') as CanvasRenderingContext2D
      context.fillStyle = '#0b0d13'
      context.fillRect(0, 0, canvas.width, canvas.height)
      render()
      const result = await mandelbrot.renderMandelbrot(peer, module, options, RUN, tile => {
        onJob(tile)
        drawTile(context, tile)
        render()
      })
      state.answer = hashsearch.hex(sha256(new Uint8Array(result.image)))
      state.summary = `${state.total} tiles of ${options.tile}×${options.tile} px in ${((performance.now() - started) / 1000).toFixed(1)} s`
    } else if (app === 'hashsearch') {
      const options = { ...hashsearch.HASHSEARCH_DEFAULTS, bits: Number($<HTMLInputElement>('hs-bits').value), count: Number($<HTMLInputElement>('hs-count').value) }
      state.total = hashsearch.chunks(options).length
      render()
      const result = await hashsearch.searchHashes(peer, module, options, RUN, chunk => {
        onJob(chunk)
        state.summary = `${chunk.searched.toLocaleString()} nonces searched`
        render()
      })
      state.answer = result.matches.map(m => m.nonce).join(',')
      const best = result.matches[0]
      state.summary = `${result.matches.length} nonce(s) give SHA-256("${options.prefix}" ‖ nonce) ${options.bits} leading zero bits, each checked again in this tab${best != null ? `; first: ${best.nonce} → ${best.hash}` : ''}`
    } else {
      const options = { ...montecarlo.MONTECARLO_DEFAULTS, samples: Number($<HTMLInputElement>('mc-samples').value) }
      state.total = montecarlo.batches(options).length
      render()
      const result = await montecarlo.estimatePi(peer, module, options, RUN, batch => {
        onJob(batch)
        state.summary = `π ≈ ${batch.estimate.toFixed(6)} after ${batch.counted.toLocaleString()} points`
        render()
      })
      state.answer = `${result.inside}/${result.samples}`
      state.summary = `π ≈ ${result.estimate.toFixed(6)} ± ${result.standardError.toPrecision(2)} from ${result.samples.toLocaleString()} points (seed ${options.seed})`
    }
    state.state = 'ok'
  } catch (err) {
    state.state = 'error'
    state.error = `${(err as Error).name}: ${(err as Error).message}`
  } finally {
    render()
    button.disabled = false
  }
}

/** Puts the tile's pixels on the canvas, framed and labelled in its worker's colour. */
function drawTile (context: CanvasRenderingContext2D, done: mandelbrot.TileDone): void {
  const { tile, pixels, worker } = done
  context.putImageData(new ImageData(new Uint8ClampedArray(pixels), tile.width, tile.height), tile.x, tile.y)
  const colour = workerColour(worker)
  context.strokeStyle = colour
  context.lineWidth = 2
  context.strokeRect(tile.x + 1, tile.y + 1, tile.width - 2, tile.height - 2)
  if (tile.width >= 48 && tile.height >= 20) {
    context.font = '10px ui-monospace, Menlo, monospace'
    context.fillStyle = '#000a'
    context.fillRect(tile.x + 2, tile.y + 2, 44, 13)
    context.fillStyle = colour
    context.fillText(tail(worker), tile.x + 5, tile.y + 12)
  }
}

function renderLegend (workers: Record<string, number>, platform: (peerId: string) => string | undefined): void {
  const list = $('app-workers')
  list.replaceChildren()
  for (const [worker, count] of Object.entries(workers).sort((a, b) => b[1] - a[1])) {
    const li = document.createElement('li')
    li.dataset.peerId = worker
    const swatch = document.createElement('span')
    swatch.className = 'swatch'
    swatch.style.background = workerColour(worker)
    const id = document.createElement('code')
    id.className = 'mono'
    id.title = worker
    id.textContent = short(worker)
    const n = document.createElement('span')
    n.className = 'muted'
    const where = platform(worker)
    n.textContent = `${count} job${count === 1 ? '' : 's'}${where === 'browser' ? ' · a browser tab' : where === 'node' ? ' · a Node peer' : ''}`
    li.append(swatch, id, n)
    list.append(li)
  }
}
