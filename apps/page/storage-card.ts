/**
 * The Storage card: stores a file on the storage peers of the mesh
 * (`peer.store`, K copies with signed storage receipts), shows where a CID
 * lives (`peer.holders`, every receipt checked) and downloads it from its
 * holders (`peer.get`, every block checked against the CID). It also lends
 * this tab's own storage (`peer.offerStorage`, IndexedDB), when the visitor
 * picks a size: remembered across visits like the Contribute choice.
 */
import { $, el, short } from './dom.ts'
import { workerColour } from './palette.ts'
import { errorDetails } from './status.ts'
import type { Holding, Peer } from '../../web/index.ts'

/** What the card last showed, for tests and the page state. */
export interface StorageView {
  cid?: string
  holders: string[]
  downloadedBytes?: number
  error?: string
  /** What this tab lends others, and how many of their CIDs it holds. */
  offeredBytes: number
  pins: number
}

/** Where the visitor's storage offer is remembered. */
const OFFER_KEY = 'wasmesh-page-storage-offer'

export class StorageCard {
  readonly #peer: Peer
  readonly view: StorageView = { holders: [], offeredBytes: 0, pins: 0 }

  constructor (peer: Peer) {
    this.#peer = peer
    for (const id of ['store-run', 'find-run', 'get-run']) {
      $<HTMLButtonElement>(id).disabled = false
    }
    $('store-form').addEventListener('submit', event => {
      event.preventDefault()
      void this.#busy('store-run', async () => { await this.#store() })
    })
    $('find-form').addEventListener('submit', event => {
      event.preventDefault()
      void this.#busy('find-run', async () => { await this.#find() })
    })
    $('get-run').addEventListener('click', () => { void this.#busy('get-run', async () => { await this.#download() }) })
    const offer = $<HTMLSelectElement>('offer-size')
    offer.disabled = false
    offer.addEventListener('change', () => { void this.#offer(Number(offer.value)) })
    peer.addEventListener('pinned', () => { this.#showOffer() })
    const remembered = readOffer()
    if (remembered > 0 && [...offer.options].some(option => Number(option.value) === remembered)) {
      offer.value = String(remembered)
      void this.#offer(remembered)
    }
  }

  /** Lends `bytes` of this tab's storage (0: none), within what the browser lets this origin keep. */
  async #offer (bytes: number): Promise<void> {
    if (bytes > 0) {
      // a persistent origin is not evicted under storage pressure; the browser may say no, and the offer still stands
      await navigator.storage?.persist?.().catch(() => false)
      const estimate = await navigator.storage?.estimate?.().catch(() => undefined)
      const room = estimate?.quota != null ? estimate.quota - (estimate.usage ?? 0) : Infinity
      if (room < bytes) {
        $<HTMLSelectElement>('offer-size').value = String(this.view.offeredBytes)
        $('offer-status').textContent = `This browser lets the page keep only ${formatBytes(room)} more: pick a smaller size.`
        return
      }
    }
    this.#peer.offerStorage(bytes)
    saveOffer(bytes)
    this.#showOffer()
  }

  #showOffer (): void {
    const stats = this.#peer.storageStats()
    this.view.offeredBytes = stats.offeredBytes
    this.view.pins = stats.pins
    $('offer-status').textContent = stats.offeredBytes === 0
      ? 'Not lending storage.'
      : `Lending ${formatBytes(stats.offeredBytes)}: holding ${stats.pins} file${stats.pins === 1 ? '' : 's'} for others (${formatBytes(stats.usedBytes)}).`
  }

  async #store (): Promise<void> {
    const file = $<HTMLInputElement>('store-file').files?.[0]
    if (file == null) {
      this.#fail('Choose a file to store first.')
      return
    }
    const replicas = Number($<HTMLInputElement>('store-replicas').value)
    this.#show('running', `Storing ${file.name} on ${replicas} peer(s)…`)
    const stored = await this.#peer.store(new Uint8Array(await file.arrayBuffer()), { replicas })
    $<HTMLInputElement>('find-cid').value = stored.cid.toString()
    this.#show('ok', `${file.name} (${formatBytes(stored.size)}) is kept by ${stored.holders.length} peer(s) until ${new Date(stored.until).toLocaleDateString()}`, stored.cid.toString(), stored.holders)
  }

  async #find (): Promise<void> {
    const cid = this.#cid()
    this.#show('running', 'Asking the storage peers…', cid)
    const holders = await this.#peer.holders(cid)
    this.#show(holders.length > 0 ? 'ok' : 'error', holders.length > 0 ? `Kept by ${holders.length} peer(s), each with a signed receipt checked in this tab` : 'No storage peer holds it now.', cid, holders)
  }

  async #download (): Promise<void> {
    const cid = this.#cid()
    this.#show('running', 'Fetching from its holders…', cid)
    const bytes = await this.#peer.get(cid)
    const link = $<HTMLAnchorElement>('storage-download')
    URL.revokeObjectURL(link.href)
    link.href = URL.createObjectURL(new Blob([new Uint8Array(bytes)]))
    link.download = cid
    link.textContent = `Save ${formatBytes(bytes.byteLength)} (every block checked against the CID)`
    link.hidden = false
    this.view.downloadedBytes = bytes.byteLength
    this.#show('ok', `Fetched ${formatBytes(bytes.byteLength)}`, cid, undefined, true)
  }

  #cid (): string {
    const cid = $<HTMLInputElement>('find-cid').value.trim()
    if (cid === '') {
      throw new Error('Enter a CID, or store a file first.')
    }
    return cid
  }

  /** Runs an action with its button disabled; a failure is shown in words, never thrown. */
  async #busy (button: string, action: () => Promise<void>): Promise<void> {
    const node = $<HTMLButtonElement>(button)
    node.disabled = true
    try {
      await action()
    } catch (err) {
      this.#fail((err as Error).message, errorDetails(err))
    } finally {
      node.disabled = false
    }
  }

  #show (state: string, title: string, cid?: string, holders?: Holding[], keepLink = false): void {
    const result = $('storage-result')
    result.hidden = false
    result.dataset.state = state
    $('storage-title').textContent = title
    $('storage-cid').textContent = cid ?? ''
    if (!keepLink) {
      $('storage-download').hidden = true
    }
    if (holders != null) {
      $('storage-holders').replaceChildren(...holders.map(holding => {
        const li = el('li')
        li.dataset.peerId = holding.peerId
        const swatch = el('span', 'swatch')
        swatch.style.background = workerColour(holding.peerId)
        const id = el('code', 'mono', short(holding.peerId))
        id.title = holding.peerId
        li.append(swatch, id, el('span', 'muted', `until ${new Date(holding.receipt.until).toLocaleDateString()}`))
        return li
      }))
      this.view.holders = holders.map(holding => holding.peerId)
    }
    if (cid != null) {
      this.view.cid = cid
    }
    delete this.view.error
  }

  #fail (message: string, details?: string): void {
    this.#show('error', message)
    $('storage-holders').replaceChildren()
    this.view.holders = []
    this.view.error = details ?? message
  }
}

function readOffer (): number {
  try {
    return Number(localStorage.getItem(OFFER_KEY) ?? 0) || 0
  } catch {
    return 0
  }
}

function saveOffer (bytes: number): void {
  try {
    localStorage.setItem(OFFER_KEY, String(bytes))
  } catch {
    // not remembered across visits, but applied now
  }
}

function formatBytes (bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 ** 2 ? `${(bytes / 1024).toFixed(1)} KiB` : bytes < 1024 ** 3 ? `${(bytes / 1024 ** 2).toFixed(1)} MiB` : `${(bytes / 1024 ** 3).toFixed(1)} GiB`
}
