/**
 * The "Peers offering compute" card: every peer advertising capacity, this
 * tab first while it contributes. A row is built again only when what it
 * shows changed, so unchanged peers keep their element.
 */
import { $, el, setText, short } from './dom.ts'
import { workerColour } from './palette.ts'
import type { RenderLoop } from './render.ts'
import type { AdvertContent, Peer, PeerCapacity } from '../../web/index.ts'

/** A peer as listed: what it advertises (our own row has no seq or interval yet). */
type PeerRow = Omit<PeerCapacity, 'advert'> & { advert: AdvertContent }

/** The rows shown, by peer id, with the key each was drawn from. */
type Rows = Map<string, { key: string, li: HTMLLIElement }>

/** Lists the peers, redrawn on each change of the capacity table or of our contribution (our own row). */
export function listPeers (peer: Peer, render: RenderLoop): void {
  let rows: Rows = new Map()
  const redraw = render.part(() => { rows = drawPeers(peer, rows) })
  peer.addEventListener('peers', redraw)
  peer.addEventListener('contribution', redraw)
  redraw()
}

/** Draws the list from `previous` rows by peer id; returns the rows now shown. */
function drawPeers (peer: Peer, previous: Rows): Rows {
  const self = peer.id
  const peers: PeerRow[] = peer.peers().filter(p => p.peerId !== self)
  const own = peer.localAdvert()
  if (own != null) {
    peers.unshift({ peerId: self, advert: own, seenAt: Date.now(), firstSeenAt: Date.now() })
  }
  const list = $('peers')
  setText($('peer-count'), String(peers.length))
  if (peers.length === 0) {
    if (previous.size > 0 || list.children.length === 0) {
      list.replaceChildren(el('li', 'empty', 'No peer has advertised capacity yet.'))
    }
    return new Map()
  }
  const next: Rows = new Map()
  for (const p of peers) {
    const { advert } = p
    const key = `${advert.platform} ${advert.slots.free}/${advert.slots.total} ${advert.memoryBytes} ${advert.cached.length} ${advert.version}`
    const old = previous.get(p.peerId)
    next.set(p.peerId, old?.key === key ? old : { key, li: peerRow(p, p.peerId === self) })
  }
  const shown = [...next.values()].map(row => row.li)
  if (shown.length !== list.children.length || shown.some((li, i) => list.children[i] !== li)) {
    list.replaceChildren(...shown)
  }
  return next
}

function peerRow (p: PeerRow, self: boolean): HTMLLIElement {
  const { advert } = p
  const li = el('li')
  li.dataset.peerId = p.peerId
  li.dataset.platform = advert.platform
  const icon = el('span', `platform ${advert.platform}`, advert.platform === 'browser' ? 'tab' : 'node')
  const id = el('code', 'mono', short(p.peerId))
  id.title = p.peerId
  const who = el('div', 'who')
  const swatch = el('span', 'swatch')
  swatch.style.background = workerColour(p.peerId)
  who.append(swatch, id)
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
