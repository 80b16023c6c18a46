/** The Run card's single job: runs the chosen module once and shows its output, worker, time and receipt. */
import { $ } from './dom.ts'
import { receiptVerified } from './receipt.ts'
import { UserError, type RunForm } from './run-form.ts'
import type { LastResult } from './state.ts'
import type { Peer } from '../../web/index.ts'

export class RunCard {
  readonly #peer: Peer
  readonly #form: RunForm
  readonly #report: (result: LastResult) => void

  /** Enables the Run button; `report` gets each job that finished. */
  constructor (peer: Peer, form: RunForm, report: (result: LastResult) => void) {
    this.#peer = peer
    this.#form = form
    this.#report = report
    $<HTMLButtonElement>('run').disabled = false
  }

  async run (): Promise<void> {
    const peer = this.#peer
    const input = this.#form.input
    const button = $<HTMLButtonElement>('run')
    button.disabled = true
    showResult('running', 'Running…', '')
    try {
      const { bytes, name } = await this.#form.module()
      showResult('running', `Running ${name}…`, '')
      const result = await peer.run({ module: bytes, input, limits: { timeoutMs: 30_000 }, signal: AbortSignal.timeout(60_000) })
      const verified = await receiptVerified(result)
      const worker = result.worker
      const where = peer.peers().find(p => p.peerId === worker)?.advert.platform
      showResult('ok', `${name} finished`, result.text(), {
        worker: `${worker}${where != null ? ` (${where === 'browser' ? 'a browser tab' : 'a Node peer'})` : ''}`,
        time: `${result.durationMs.toFixed(0)} ms round trip · ${result.receipt.stats.execMs.toFixed(1)} ms exec${result.receipt.stats.moduleCached ? ' · module cached' : ''}`,
        job: result.job.toString(),
        verified
      })
      this.#report({ worker, durationMs: result.durationMs, output: result.text(), verified })
    } catch (err) {
      const error = err as Error & { receipt?: { worker: string } }
      const name = err instanceof UserError ? 'Cannot run' : error.name
      showResult('error', name === 'TimeoutError' ? 'Timed out' : name, error.message, { worker: error.receipt?.worker })
    } finally {
      button.disabled = false
    }
  }
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
