/**
 * The network view: this tab, the peers it knows (tabs, Node peers, the
 * bootstrap relay), how each is linked to this tab (WebRTC direct, relayed,
 * WebSockets, TCP), and who is computing for whom right now. Drawn as a
 * small SVG graph with this tab in the middle, and as a list that says the
 * same in words. This tab sees its own links only: links between two other
 * peers are not shown.
 */
import { $, el, setText, short, tail } from './dom.ts'
import { workerColour } from './palette.ts'
import type { RenderLoop } from './render.ts'
import type { ConnectionTransport, Peer, PeerConnection } from '../../web/index.ts'

export type PeerKind = 'tab' | 'node' | 'bootstrap' | 'peer'

/** How a link is named and drawn. */
const LINKS: Record<ConnectionTransport | 'none', { text: string, dash: string, colour: string }> = {
  webrtc: { text: 'WebRTC, direct', dash: '', colour: '#5ee6cb' },
  relay: { text: 'relayed', dash: '7 5', colour: '#f5a524' },
  websockets: { text: 'WebSockets', dash: '2 4', colour: '#b3a9ff' },
  tcp: { text: 'TCP', dash: '2 4', colour: '#b3a9ff' },
  other: { text: 'other transport', dash: '2 4', colour: '#8d93a8' },
  none: { text: 'not connected to this tab', dash: '', colour: 'transparent' }
}
/** The link shown when a peer has several connections: the most direct first. */
const PREFERENCE: ConnectionTransport[] = ['webrtc', 'websockets', 'tcp', 'other', 'relay']
const KIND_TEXT: Record<PeerKind, string> = { tab: 'browser tab', node: 'Node peer', bootstrap: 'bootstrap relay', peer: 'peer, not sharing' }
/** The same, where the graph has room for a word. */
const KIND_LABEL: Record<PeerKind, string> = { tab: 'tab', node: 'node', bootstrap: 'relay', peer: 'peer' }
/** The graph shows at most this many peers around this tab; the list shows all. */
const GRAPH_PEERS = 12
const SVG = 'http://www.w3.org/2000/svg'

export interface MeshPeer {
  id: string
  kind: PeerKind
  link: ConnectionTransport | 'none'
  /** Jobs this peer runs for this tab now. */
  computingForUs: number
  /** Jobs this tab runs for that peer now. */
  computingForThem: number
}

export class MeshView {
  readonly #peer: Peer
  readonly #bootstrapIds: Set<string>
  /** Our jobs in flight, by job CID → the worker running it. */
  readonly #ours = new Map<string, string>()
  /** Jobs we serve now, by requester. */
  readonly #serving = new Map<string, number>()
  readonly #redraw: () => void
  #drawn: Drawn | undefined
  /** The peers as last drawn, for the tests. */
  shown: MeshPeer[] = []

  constructor (peer: Peer, bootstrap: string[], render: RenderLoop) {
    this.#peer = peer
    this.#bootstrapIds = new Set(bootstrap.map(addr => addr.match(/\/p2p\/([^/]+)$/)?.[1]).filter(id => id != null))
    this.#redraw = render.part(() => { this.#draw() })
    for (const type of ['peers', 'connections', 'contribution'] as const) {
      peer.addEventListener(type, this.#redraw)
    }
    peer.addEventListener('job:running', event => {
      if (event.detail.worker != null) {
        this.#ours.set(event.detail.job, event.detail.worker)
        this.#redraw()
      }
    })
    for (const type of ['job:retry', 'job:done', 'job:failed'] as const) {
      peer.addEventListener(type, event => {
        this.#ours.delete(event.detail.job)
        this.#redraw()
      })
    }
    peer.addEventListener('work:start', event => {
      this.#serving.set(event.detail.requester, (this.#serving.get(event.detail.requester) ?? 0) + 1)
      this.#redraw()
    })
    peer.addEventListener('work:end', event => {
      const left = (this.#serving.get(event.detail.requester) ?? 1) - 1
      if (left > 0) {
        this.#serving.set(event.detail.requester, left)
      } else {
        this.#serving.delete(event.detail.requester)
      }
      this.#redraw()
    })
    // connections change without an event when a relayed link is upgraded: look again now and then
    setInterval(this.#redraw, 2000)
    this.#redraw()
  }

  #peers (): MeshPeer[] {
    const self = this.#peer.id
    const links = new Map<string, PeerConnection[]>()
    for (const connection of this.#peer.connections()) {
      links.set(connection.peerId, [...(links.get(connection.peerId) ?? []), connection])
    }
    const platforms = new Map(this.#peer.peers().map(p => [p.peerId, p.advert.platform]))
    const ids = new Set([...links.keys(), ...platforms.keys()])
    ids.delete(self)
    const computingForUs = new Map<string, number>()
    for (const worker of this.#ours.values()) {
      computingForUs.set(worker, (computingForUs.get(worker) ?? 0) + 1)
    }
    return [...ids].map(id => {
      const platform = platforms.get(id)
      const kind: PeerKind = this.#bootstrapIds.has(id) ? 'bootstrap' : platform === 'browser' ? 'tab' : platform === 'node' ? 'node' : 'peer'
      const transports = (links.get(id) ?? []).map(c => c.transport)
      const link: MeshPeer['link'] = PREFERENCE.find(t => transports.includes(t)) ?? 'none'
      return { id, kind, link, computingForUs: computingForUs.get(id) ?? 0, computingForThem: this.#serving.get(id) ?? 0 }
    }).sort((a, b) => order(a) - order(b) || a.id.localeCompare(b.id))
  }

  /**
   * Builds the graph and the list again only when the peers or their links
   * changed; when only who computes for whom did, it updates the edges and
   * lines in place. A tab serving many jobs a second goes busy and idle in
   * every frame, and rebuilding both cost it ~10 ms per job.
   */
  #draw (): void {
    const peers = this.#peers()
    this.shown = peers
    const layout = peers.map(p => `${p.id} ${p.kind} ${p.link}`).join('|')
    if (layout !== this.#drawn?.layout) {
      setText($('mesh-count'), String(peers.length + 1))
      this.#drawn = { layout, edges: drawGraph(this.#peer.id, peers.slice(0, GRAPH_PEERS)), doing: drawList(peers) }
      return
    }
    const { edges, doing } = this.#drawn
    for (const p of peers) {
      const edge = edges.get(p.id)
      if (edge != null) {
        markEdge(edge, p)
      }
      const text = doing.get(p.id)
      if (text != null) {
        setText(text, doingText(p))
      }
    }
  }
}

/** The edges and the lines' "doing" texts as drawn, by peer id, and the layout they were drawn for. */
interface Drawn {
  layout: string
  edges: Map<string, SVGLineElement>
  doing: Map<string, HTMLElement>
}

/** A peer's colour, the same as in the tiles, legends and lists; the bootstrap relay computes nothing and stays grey. */
function colourOf (p: MeshPeer): string {
  return p.kind === 'bootstrap' ? '#5a6078' : workerColour(p.id)
}

function order (p: MeshPeer): number {
  return p.kind === 'bootstrap' ? 0 : p.link === 'none' ? 2 : 1
}

function svg<K extends keyof SVGElementTagNameMap> (tag: K, attributes: Record<string, string | number>): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag)
  for (const [name, value] of Object.entries(attributes)) {
    node.setAttribute(name, String(value))
  }
  return node
}

/** Draws the graph; returns its edges by peer id. */
function drawGraph (self: string, peers: MeshPeer[]): Map<string, SVGLineElement> {
  const graph = $('mesh-graph') as unknown as SVGSVGElement
  const width = 640
  const height = 300
  const cx = width / 2
  const cy = height / 2
  const nodes: SVGElement[] = []
  const edges = new Map<string, SVGLineElement>()
  peers.forEach((p, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, peers.length)
    const x = cx + Math.cos(angle) * 220
    const y = cy + Math.sin(angle) * 100
    const link = LINKS[p.link]
    if (p.link !== 'none') {
      const line = svg('line', { x1: cx, y1: cy, x2: x, y2: y, stroke: link.colour })
      if (link.dash !== '') {
        line.setAttribute('stroke-dasharray', link.dash)
      }
      markEdge(line, p)
      edges.set(p.id, line)
    }
    nodes.push(node(x, y, p.id, p.kind, colourOf(p), `${KIND_LABEL[p.kind]} ${tail(p.id)}`))
  })
  nodes.push(node(cx, cy, self, 'tab', '#ffffff', 'this tab'))
  graph.replaceChildren(...edges.values(), ...nodes)
  graph.setAttribute('aria-label', `This tab and ${peers.length} peer${peers.length === 1 ? '' : 's'}; the list below says how each is linked.`)
  return edges
}

/** A link carrying jobs either way is drawn thick and bright. */
function markEdge (line: SVGLineElement, p: MeshPeer): void {
  const active = p.computingForUs + p.computingForThem > 0
  line.setAttribute('stroke-width', active ? '4' : '2')
  line.setAttribute('class', active ? 'edge active' : 'edge')
}

function node (x: number, y: number, id: string, kind: PeerKind, colour: string, label: string): SVGElement {
  const group = svg('g', { 'data-peer-id': id })
  const shape = kind === 'tab'
    ? svg('circle', { cx: x, cy: y, r: 16, fill: colour, stroke: '#0f1117', 'stroke-width': 3 })
    : svg('rect', { x: x - 15, y: y - 15, width: 30, height: 30, rx: 6, fill: colour, stroke: '#0f1117', 'stroke-width': 3 })
  const text = svg('text', { x, y: y + 36, 'text-anchor': 'middle', class: 'mesh-label' })
  text.textContent = label
  group.append(shape, text)
  return group
}

/** Draws the list; returns each line's "doing" text by peer id. */
function drawList (peers: MeshPeer[]): Map<string, HTMLElement> {
  const list = $('mesh-peers')
  const doing = new Map<string, HTMLElement>()
  if (peers.length === 0) {
    list.replaceChildren(el('li', 'empty', 'No other peer yet.'))
    return doing
  }
  list.replaceChildren(...peers.map(p => {
    const li = el('li')
    li.dataset.peerId = p.id
    li.dataset.kind = p.kind
    li.dataset.link = p.link
    const swatch = el('span', 'swatch')
    swatch.style.background = colourOf(p)
    const id = el('code', 'mono', short(p.id))
    id.title = p.id
    const link = el('span', `link link-${p.link}`, LINKS[p.link].text)
    const what = el('span', 'muted doing', doingText(p))
    doing.set(p.id, what)
    li.append(swatch, el('span', `kind kind-${p.kind}`, KIND_TEXT[p.kind]), id, link, what)
    return li
  }))
  return doing
}

function doingText (p: MeshPeer): string {
  return [
    p.computingForUs > 0 ? `computing ${p.computingForUs} job${p.computingForUs === 1 ? '' : 's'} for this tab` : '',
    p.computingForThem > 0 ? `this tab computes ${p.computingForThem} for it` : ''
  ].filter(text => text !== '').join(' · ')
}
