/**
 * The jobs this tab served for others, newest first, each with the receipt
 * it signed: checked again here with the SDK's public verifier, so what the
 * list shows is what the requester received and can check.
 */
import { $, el, short } from './dom.ts'
import { workerColour } from './palette.ts'
import type { RenderLoop } from './render.ts'
import type { Peer, Receipt, ServedJob } from '../../web/index.ts'

/** Rows kept: a tab left open serves thousands of jobs. */
const KEPT = 50

export interface ServedRow {
  job: string
  requester: string
  at: number
  /** Whether the job ended with a signed receipt; none when it was cancelled or its content was unreachable. */
  signed: boolean
  /** The receipt, once it verified. */
  receipt?: Receipt
  verified: boolean
}

export class ServedHistory {
  readonly rows: ServedRow[] = []
  /** Each row's line, built once: a tab serving hundreds of jobs a second rebuilt all 50 per frame (~10 ms per job). */
  readonly #items = new WeakMap<ServedRow, HTMLLIElement>()
  readonly #redraw: () => void

  constructor (peer: Peer, render: RenderLoop) {
    this.#redraw = render.part(() => { this.#draw() })
    peer.addEventListener('work:end', event => { void this.#add(peer.id, event.detail) })
  }

  async #add (self: string, served: ServedJob): Promise<void> {
    const row: ServedRow = { job: served.job, requester: served.requester, at: Date.now(), signed: served.signed != null, verified: false }
    if (served.signed != null) {
      const { verifyReceipt } = await import('../../web/index.ts')
      try {
        row.receipt = (await verifyReceipt(served.signed, { worker: self })).receipt
        row.verified = true
      } catch {
        row.verified = false
      }
    }
    this.rows.unshift(row)
    this.rows.length = Math.min(this.rows.length, KEPT)
    this.#redraw()
  }

  /** Rows only arrive at the top and fall off the bottom: adds the new lines, drops those no longer kept. */
  #draw (): void {
    const list = $('served-history')
    const fresh: HTMLLIElement[] = []
    for (const row of this.rows) {
      if (this.#items.has(row)) {
        break
      }
      const item = rowItem(row)
      this.#items.set(row, item)
      fresh.push(item)
    }
    list.prepend(...fresh)
    while (list.children.length > this.rows.length) {
      list.lastElementChild?.remove()
    }
  }
}

const TIME = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' })
const NUMBER = new Intl.NumberFormat()

function rowItem (row: ServedRow): HTMLLIElement {
  const li = el('li')
  li.dataset.job = row.job
  li.dataset.verified = String(row.verified)
  const time = el('time', 'muted', TIME.format(row.at))
  time.dateTime = new Date(row.at).toISOString()
  const job = el('code', 'mono', short(row.job))
  job.title = row.job
  const requester = el('span', 'by')
  const swatch = el('span', 'swatch')
  swatch.style.background = workerColour(row.requester)
  const id = el('code', 'mono', short(row.requester))
  id.title = row.requester
  requester.append('for ', swatch, id)
  const receipt = row.receipt
  const outcome = receipt != null
    ? `${receipt.error != null ? receipt.error.name : `exit ${receipt.exitCode}`} · ${NUMBER.format(receipt.outputSize)} B · ${receipt.stats.execMs.toFixed(1)} ms`
    : row.signed ? 'its receipt did not verify' : 'ended without a receipt'
  const badge = el('span', 'badge', !row.signed ? '' : row.verified ? '✓ signed' : '✗ not verified')
  badge.dataset.verified = String(row.verified)
  li.append(time, job, requester, el('span', 'muted', outcome), badge)
  return li
}
