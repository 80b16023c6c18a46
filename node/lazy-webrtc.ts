import { lazyTransport } from './lazy-transport.ts'
import type { Transport } from '@libp2p/interface'
import type { WebRTCTransportComponents, WebRTCTransportInit } from '@libp2p/webrtc'

/** A browser tab's address: `…/p2p-circuit/webrtc/p2p/<tab>`. */
const BROWSER_ADDR = /\/p2p-circuit\/webrtc(\/p2p\/[^/]+)?$/

/**
 * WebRTC for Node peers, loaded on the first dial to a browser tab. Node
 * peers only dial tabs (they never listen on `/webrtc`), and most never meet
 * one: loading @libp2p/webrtc and node-datachannel up front cost every idle
 * worker ~18 MiB of memory.
 */
export function lazyWebRTC (init: WebRTCTransportInit = {}): (components: WebRTCTransportComponents) => Transport {
  return lazyTransport<WebRTCTransportComponents>({
    name: '@libp2p/webrtc-lazy',
    dials: BROWSER_ADDR,
    dependencies: ['@libp2p/identify', '@libp2p/circuit-relay-v2-transport'],
    load: async () => {
      const { webRTC } = await import('@libp2p/webrtc')
      return webRTC(init)
    }
  })
}
