/**
 * The Run card's batches. The SDK stores a batch in IndexedDB before any job
 * runs and each result as it is accepted, so after a reload the page resumes
 * what is left: finished jobs come back from storage and are not run again.
 */
import { readMeta, writeMeta, type BatchMeta } from './batch-meta.ts'
import { $, el, setText, tail } from './dom.ts'
import { receiptVerified } from './receipt.ts'
import { UserError, type RunForm } from './run-form.ts'
import type { RenderLoop } from './render.ts'
import type { BatchRow, BatchState } from './state.ts'
import type { MapResult, Peer } from '../../web/index.ts'

/** Jobs in flight at once: keeps a few workers busy without queueing the whole batch at one. */
const BATCH_CONCURRENCY = 4

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

export class BatchCard {
  readonly #peer: Peer
  readonly #form: RunForm
  readonly #report: (batch: BatchState | undefined) => void
  readonly #redraw: () => void
  #view: BatchView | undefined

  /** Enables the Run batch button; `report` gets the batch shown, which then changes in place as results arrive. */
  constructor (peer: Peer, form: RunForm, report: (batch: BatchState | undefined) => void, render: RenderLoop) {
    this.#peer = peer
    this.#form = form
    this.#report = report
    this.#redraw = render.part(() => { this.#draw() })
    $('batch-discard').addEventListener('click', () => { this.#discard() })
    $<HTMLButtonElement>('batch-run').disabled = false
  }

  /** Starts the batch the form describes. */
  async start (): Promise<void> {
    if (this.#running()) {
      return
    }
    const peer = this.#peer
    showBatchError(undefined)
    const button = $<HTMLButtonElement>('batch-run')
    button.disabled = true
    try {
      const { id, inputs } = this.#form.batch()
      const options = this.#form.jobOptions()
      const demo = this.#form.demo
      const { bytes, name } = await this.#form.module()
      if ((await peer.listBatches()).some(stored => stored.id === id)) {
        throw new UserError(`A batch named "${id}" is stored already: pick another name.`)
      }
      const meta = { module: name, demo, inputs }
      writeMeta(id, meta)
      await this.#drive(id, meta, inputs.length, undefined, signal => peer.batch(id, bytes, inputs, { concurrency: BATCH_CONCURRENCY, ...options, signal }))
    } catch (err) {
      showBatchError(err instanceof UserError ? err.message : `${(err as Error).name}: ${(err as Error).message}`)
    } finally {
      button.disabled = this.#running()
    }
  }

  /** Shows batches a reload interrupted, and runs what is left of each. */
  async resumeStored (): Promise<void> {
    const peer = this.#peer
    let stored: Awaited<ReturnType<Peer['listBatches']>>
    try {
      stored = await peer.listBatches()
    } catch (err) {
      showBatchError(`Could not read stored batches: ${(err as Error).message}`)
      return
    }
    for (const { id, total, done } of stored) {
      const meta = readMeta(id)
      this.#form.restoreBatch(id, meta)
      await this.#drive(id, meta, total, done, signal => peer.resume(id, { concurrency: BATCH_CONCURRENCY, signal }))
    }
  }

  #running (): boolean {
    return this.#view?.state.state === 'running'
  }

  /** Runs a batch's results into the card until it ends or is discarded; a finished batch is forgotten. */
  async #drive (id: string, meta: BatchMeta | undefined, total: number, resumedFrom: number | undefined, results: (signal: AbortSignal) => AsyncGenerator<MapResult>): Promise<void> {
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
    this.#view = view
    this.#report(state)
    $<HTMLButtonElement>('batch-run').disabled = true
    this.#redraw()
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
          Object.assign(row, { state: 'ok', output: run.text(), worker: run.worker, job: run.job.toString(), resumed: run.resumed, verified: await receiptVerified(run) })
          state.done++
        } else {
          const error = result.error as Error & { receipt?: { worker: string } }
          Object.assign(row, { state: 'error', error: `${error.name}: ${error.message}`, worker: error.receipt?.worker })
          state.failed++
        }
        view.changed.add(result.index)
        this.#redraw()
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
        await this.#peer.deleteBatch(id).catch(() => {})
        writeMeta(id, undefined)
      }
      $<HTMLButtonElement>('batch-run').disabled = this.#running()
      this.#redraw()
    }
  }

  #discard (): void {
    const view = this.#view
    if (view == null) {
      return
    }
    this.#view = undefined
    this.#report(undefined)
    if (view.state.state === 'running') {
      view.controller.abort()
    } else {
      void this.#peer.deleteBatch(view.state.id).catch(() => {})
      writeMeta(view.state.id, undefined)
    }
    this.#redraw()
  }

  #draw (): void {
    const box = $('batch')
    const view = this.#view
    if (view == null) {
      box.hidden = true
      return
    }
    const { state } = view
    box.hidden = false
    box.dataset.state = state.state
    setText($('batch-title'), `Batch "${state.id}"`)
    setText($('batch-module'), state.module)
    const finished = state.done + state.failed
    const progress = $<HTMLProgressElement>('batch-progress')
    progress.max = Math.max(1, state.total)
    progress.value = finished
    const seconds = ((performance.now() - view.started) / 1000).toFixed(1)
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
    if (view.fresh) {
      list.replaceChildren(...view.rows)
      view.fresh = false
    }
    for (const index of view.changed) {
      drawRow(view.rows[index] as HTMLLIElement, state.rows[index] as BatchRow)
    }
    view.changed.clear()
  }
}

function showBatchError (message: string | undefined): void {
  const box = $('batch-error')
  box.hidden = message == null
  box.textContent = message ?? ''
}

function drawRow (li: HTMLLIElement, row: BatchRow): void {
  li.dataset.index = String(row.index)
  li.dataset.state = row.state
  li.dataset.resumed = String(row.resumed === true)
  const input = el('code', 'in', row.input ?? `job ${row.index + 1}`)
  input.title = row.input ?? ''
  const output = el('code', 'out', row.state === 'ok' ? (row.output ?? '').trimEnd() : row.state === 'error' ? row.error ?? 'failed' : 'queued')
  output.title = row.state === 'ok' ? row.output ?? '' : row.error ?? ''
  const worker = el('span', 'by', row.worker != null ? tail(row.worker) : '')
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
