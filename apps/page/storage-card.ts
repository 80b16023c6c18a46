/**
 * The Storage card: stores a file on the storage peers of the mesh
 * (`peer.store`, K copies with signed storage receipts), shows where a CID
 * lives (`peer.holders`, every receipt checked) and downloads it from its
 * holders (`peer.get`, every block checked against the CID).
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
}

export class StorageCard {
  readonly #peer: Peer
  readonly view: StorageView = { holders: [] }

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

function formatBytes (bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}
