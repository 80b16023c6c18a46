import type { Libp2p } from '@libp2p/interface'

/** How a connection to another peer is carried. */
export type ConnectionTransport = 'webrtc' | 'relay' | 'websockets' | 'tcp' | 'other'

/** A live connection to another peer, as `peer.connections()` reports it. */
export interface PeerConnection {
  peerId: string
  remoteAddr: string
  transport: ConnectionTransport
  /** False for a relayed connection: its bytes pass through a relay node. */
  direct: boolean
}

/** Our live connections and how each is carried. */
export function describeConnections (libp2p: Pick<Libp2p, 'getConnections'>): PeerConnection[] {
  return libp2p.getConnections().map(connection => {
    const remoteAddr = connection.remoteAddr.toString()
    const transport = transportOf(remoteAddr)
    return { peerId: connection.remotePeer.toString(), remoteAddr, transport, direct: transport !== 'relay' }
  })
}

/** A relayed WebRTC connection is direct once upgraded; a bare circuit address is relayed. */
function transportOf (remoteAddr: string): ConnectionTransport {
  if (remoteAddr.includes('/webrtc')) {
    return 'webrtc'
  }
  if (remoteAddr.includes('/p2p-circuit')) {
    return 'relay'
  }
  if (/\/wss?(\/|$)/.test(remoteAddr)) {
    return 'websockets'
  }
  return remoteAddr.includes('/tcp/') ? 'tcp' : 'other'
}
