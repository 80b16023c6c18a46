import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { meshPubsub } from '../protocol/net/gossip.ts'
import { lazyTransport } from './lazy-transport.ts'
import { lazyWebRTC } from './lazy-webrtc.ts'
import type { PrivateKey } from '@libp2p/interface'
import type { WebSocketsComponents } from '@libp2p/websockets'
import type { Libp2pOptions } from 'libp2p'

export interface NodeLibp2pInit {
  privateKey: PrivateKey
  listen: string[]
  /** Serve circuit-relay-v2 reservations (bootstrap nodes). */
  relay?: boolean
  /** Certificate and key (PEM) for listening on `/tls/ws` (wss://). */
  tls?: TlsFiles
}

/** A TLS certificate (chain) and its private key, PEM. */
export interface TlsFiles {
  cert: string
  key: string
}

/** A WebSockets address as @libp2p/websockets dials and listens on it: `ws`, `wss` or `tls/ws` over TCP, not a relayed one. */
const WEBSOCKETS_ADDR = /^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+\/tcp\/\d+\/(ws|wss|tls\/ws|tls\/sni\/[^/]+\/ws)(\/p2p\/[^/]+)?$/

/**
 * libp2p for Node peers: TCP and WebSockets, noise, yamux, and the mesh's
 * gossipsub (protocol/gossip.ts). No peer discovery, DHT or public bootstrap list: a peer
 * dials exactly the bootstrap nodes it is given and the workers it hears of.
 */
export function nodeLibp2pOptions (init: NodeLibp2pInit): Libp2pOptions<Record<string, unknown>> {
  return {
    privateKey: init.privateKey,
    addresses: { listen: init.listen },
    // WebRTC: lets Node peers dial browser tabs (their /p2p-circuit/webrtc addresses), loaded on the first such dial; no public STUN
    // WebSockets: loaded when asked to listen on or dial a ws address (a worker on TCP alone never is)
    transports: [tcp(), lazyTransport<WebSocketsComponents>({
      name: '@libp2p/websockets-lazy',
      dials: WEBSOCKETS_ADDR,
      listens: WEBSOCKETS_ADDR,
      load: async () => {
        const { webSockets } = await import('@libp2p/websockets')
        return webSockets(init.tls != null ? { https: { cert: init.tls.cert, key: init.tls.key } } : {})
      }
    }), circuitRelayTransport(), lazyWebRTC({ rtcConfiguration: { iceServers: [] } })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    // libp2p refuses a host's 6th connection in a second: far too few for a rendezvous
    // node, where a classroom or a carrier NAT is one host joining at once
    connectionManager: init.relay === true
      ? { maxConnections: 5000, inboundConnectionThreshold: 200, maxIncomingPendingConnections: 200 }
      : { inboundConnectionThreshold: 50, maxIncomingPendingConnections: 50 },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: meshPubsub(),
      ...(init.relay === true ? { relay: circuitRelayServer({ reservations: { maxReservations: 1024 } }) } : {})
    }
  }
}
