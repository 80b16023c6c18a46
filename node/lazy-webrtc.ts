import { serviceCapabilities, serviceDependencies, transportSymbol, type Connection, type DialTransportOptions, type Listener, type Startable, type Transport } from '@libp2p/interface'
import type { WebRTCTransportComponents, WebRTCTransportInit } from '@libp2p/webrtc'
import type { Multiaddr } from '@multiformats/multiaddr'

/** A browser tab's address: `…/p2p-circuit/webrtc/p2p/<tab>`. */
const BROWSER_ADDR = /\/p2p-circuit\/webrtc(\/p2p\/[^/]+)?$/

/**
 * WebRTC for Node peers, loaded on the first dial to a browser tab. Node
 * peers only dial tabs (they never listen on `/webrtc`), and most never meet
 * one: loading @libp2p/webrtc and node-datachannel up front cost every idle
 * worker ~18 MiB of memory.
 */
export function lazyWebRTC (init: WebRTCTransportInit = {}): (components: WebRTCTransportComponents) => Transport {
  return components => new LazyWebRTC(components, init)
}

class LazyWebRTC implements Transport, Startable {
  readonly [transportSymbol] = true
  readonly [Symbol.toStringTag] = '@libp2p/webrtc-lazy'
  // as the real transport declares, so libp2p checks the same things at start
  readonly [serviceCapabilities] = ['@libp2p/transport']
  readonly [serviceDependencies] = ['@libp2p/identify', '@libp2p/circuit-relay-v2-transport']
  private readonly components: WebRTCTransportComponents
  private readonly init: WebRTCTransportInit
  private transport?: Promise<Transport & Startable>

  constructor (components: WebRTCTransportComponents, init: WebRTCTransportInit) {
    this.components = components
    this.init = init
  }

  async start (): Promise<void> {}

  async stop (): Promise<void> {
    const transport = await this.transport?.catch(() => undefined)
    this.transport = undefined
    await transport?.stop()
  }

  listenFilter (): Multiaddr[] {
    return []
  }

  dialFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    return multiaddrs.filter(ma => BROWSER_ADDR.test(ma.toString()))
  }

  createListener (): Listener {
    throw new Error('Node peers do not listen on /webrtc')
  }

  async dial (ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    return (await this.load()).dial(ma, options)
  }

  private async load (): Promise<Transport & Startable> {
    this.transport ??= import('@libp2p/webrtc').then(async ({ webRTC }) => {
      const transport = webRTC(this.init)(this.components) as Transport & Startable
      await transport.start()
      return transport
    })
    return this.transport
  }
}
