/**
 * The Run card's single job: runs the chosen module once with the folded
 * options (arguments, environment, limits), shows the time elapsed and a
 * Cancel button while it runs, then its output, worker, time and receipt. A
 * job that failed on the worker comes with the worker's signed receipt: the
 * page verifies and shows it like a success's.
 */
import { $ } from './dom.ts'
import { workerColour } from './palette.ts'
import { receiptVerified, signedFailureVerified } from './receipt.ts'
import { UserError, type RunForm } from './run-form.ts'
import type { LastResult } from './state.ts'
import type { Peer, WasmeshError } from '../../web/index.ts'

/** How much longer than its time limit the page waits for a job before giving up on it. */
const GRACE_MS = 30_000

/** Titles for the failures a visitor meets; others show the error's name. */
const FAILURE_TITLES: Record<string, string> = {
  CancelledError: 'Cancelled',
  TimeLimitError: 'Stopped at its time limit',
  TimeoutError: 'No answer in time',
  MemoryLimitError: 'Stopped at its memory limit',
  OutputLimitError: 'Stopped at its output limit',
  WasmTrapError: 'The module crashed',
  NoWorkersError: 'No peer can run it now',
  NonZeroExitError: 'The module exited with an error',
  DeadlineError: 'No answer in time'
}

export class RunCard {
  readonly #peer: Peer
  readonly #form: RunForm
  readonly #report: (result: LastResult) => void
  #running: AbortController | undefined

  /** Enables the Run button; `report` gets each job that finished. */
  constructor (peer: Peer, form: RunForm, report: (result: LastResult) => void) {
    this.#peer = peer
    this.#form = form
    this.#report = report
    $<HTMLButtonElement>('run').disabled = false
    $('result-cancel').addEventListener('click', () => { this.#running?.abort() })
  }

  async run (): Promise<void> {
    const peer = this.#peer
    const input = this.#form.input
    const button = $<HTMLButtonElement>('run')
    button.disabled = true
    const controller = new AbortController()
    this.#running = controller
    const stopClock = startClock()
    $('result-cancel').hidden = false
    showResult('running', 'Running…', '')
    try {
      const options = this.#form.jobOptions()
      const { bytes, name } = await this.#form.module()
      showResult('running', `Running ${name}…`, '')
      const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(options.limits.timeoutMs + GRACE_MS)])
      const result = await peer.run({ module: bytes, input, ...options, signal })
      const verified = await receiptVerified(result)
      const worker = result.worker
      showResult('ok', `${name} finished`, result.text(), {
        worker: this.#describeWorker(worker),
        colour: workerColour(worker),
        time: `${result.durationMs.toFixed(0)} ms round trip · ${result.receipt.stats.execMs.toFixed(1)} ms exec${result.receipt.stats.moduleCached ? ' · module cached' : ''}`,
        job: result.job.toString(),
        verified,
        receipt: verified ? 'signed by the worker, signature and output hash checked in this tab' : 'did not verify: do not trust this output'
      })
      this.#report({ worker, durationMs: result.durationMs, output: result.text(), verified })
    } catch (err) {
      showFailure(err, controller.signal.aborted, this.#describeWorker.bind(this))
      const failure = err as WasmeshError
      if (failure.signed != null) {
        const verified = await signedFailureVerified(failure.signed, failure.receipt?.worker)
        setReceipt(verified, verified ? `the failure is signed by the worker (exit code ${failure.receipt?.exitCode ?? '?'}); signature checked in this tab` : 'a failure receipt came back but did not verify')
      }
    } finally {
      stopClock()
      $('result-cancel').hidden = true
      this.#running = undefined
      button.disabled = false
    }
  }

  #describeWorker (worker: string): string {
    const where = this.#peer.peers().find(p => p.peerId === worker)?.advert.platform
    return `${worker}${where != null ? ` (${where === 'browser' ? 'a browser tab' : 'a Node peer'})` : ''}`
  }
}

/** Counts the seconds since the job started in the result's header; returns what stops it. */
function startClock (): () => void {
  const started = performance.now()
  const elapsed = $('result-elapsed')
  const tick = (): void => { elapsed.textContent = `${((performance.now() - started) / 1000).toFixed(1)} s` }
  tick()
  const timer = setInterval(tick, 100)
  return () => {
    clearInterval(timer)
    tick()
  }
}

function showFailure (err: unknown, cancelled: boolean, describe: (worker: string) => string): void {
  if (err instanceof UserError) {
    showResult('error', 'Cannot run', err.message)
    return
  }
  const error = err as Partial<WasmeshError> & Error
  const title = cancelled ? 'Cancelled' : FAILURE_TITLES[error.name] ?? error.name
  const hint = typeof error.hint === 'string' && error.hint !== '' ? `\n${error.hint}` : ''
  const worker = error.receipt?.worker
  showResult('error', title, cancelled ? 'You cancelled the job: the worker was told to stop it.' : `${error.message}${hint}`, {
    ...(worker != null ? { worker: describe(worker), colour: workerColour(worker) } : {}),
    ...(error.receipt != null ? { job: error.receipt.job.toString() } : {})
  })
}

function showResult (state: 'running' | 'ok' | 'error', title: string, output: string, details?: { worker?: string, colour?: string, time?: string, job?: string, verified?: boolean, receipt?: string }): void {
  const box = $('result')
  box.hidden = false
  box.dataset.state = state
  $('result-title').textContent = title
  $('result-output').textContent = output
  const worker = $('result-worker')
  worker.textContent = details?.worker ?? '—'
  worker.style.borderLeft = details?.colour != null ? `4px solid ${details.colour}` : ''
  worker.style.paddingLeft = details?.colour != null ? '6px' : ''
  $('result-time').textContent = details?.time ?? '—'
  $('result-job').textContent = details?.job ?? '—'
  if (state === 'running') {
    const badge = $('result-verified')
    badge.dataset.verified = 'false'
    badge.textContent = 'running…'
    $('result-receipt').textContent = '—'
  } else if (details?.verified != null) {
    setReceipt(details.verified, details.receipt ?? '')
  } else {
    $('result-verified').textContent = ''
    $('result-receipt').textContent = 'none: the job did not reach a worker that answered'
  }
}

function setReceipt (verified: boolean, text: string): void {
  const badge = $('result-verified')
  badge.dataset.verified = String(verified)
  badge.textContent = verified ? '✓ receipt verified' : '✗ not verified'
  $('result-receipt').textContent = text
}
