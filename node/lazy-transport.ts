import { serviceCapabilities, serviceDependencies, transportSymbol, type Connection, type CreateListenerOptions, type DialTransportOptions, type Listener, type ListenerEvents, type Startable, type Transport } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface LazyTransportInit<Components> {
  /** Names it in libp2p's logs. */
  name: string
  /** The addresses it dials, decided without loading the transport. */
  dials: RegExp
  /** The addresses it listens on; unset: it never listens. */
  listens?: RegExp
  /** The services the real transport depends on, so libp2p checks them at start as it would. */
  dependencies?: string[]
  load: () => Promise<(components: Components) => Transport>
}

/**
 * A libp2p transport whose module is imported when first needed: on the
 * first dial to one of its addresses, or when asked to listen on one. Node
 * peers carry transports most never use, and each costs an idle worker
 * memory for its whole life: WebRTC (only to dial browser tabs) ~18 MiB with
 * node-datachannel, WebSockets ~3 MiB (its node:http import makes Node load
 * its bundled undici) on a worker that listens on TCP only.
 */
export function lazyTransport<Components> (init: LazyTransportInit<Components>): (components: Components) => Transport {
  return components => new LazyTransport(components, init)
}

class LazyTransport<Components> implements Transport, Startable {
  readonly [transportSymbol] = true
  // as the real transports declare, so libp2p checks the same things at start
  readonly [serviceCapabilities] = ['@libp2p/transport']
  readonly [serviceDependencies]: string[]
  private readonly components: Components
  private readonly init: LazyTransportInit<Components>
  private transport?: Promise<Transport & Partial<Startable>>

  constructor (components: Components, init: LazyTransportInit<Components>) {
    this.components = components
    this.init = init
    this[serviceDependencies] = init.dependencies ?? []
  }

  get [Symbol.toStringTag] (): string {
    return this.init.name
  }

  async start (): Promise<void> {}

  async stop (): Promise<void> {
    const transport = await this.transport?.catch(() => undefined)
    this.transport = undefined
    await transport?.stop?.()
  }

  listenFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    const { listens } = this.init
    return listens == null ? [] : multiaddrs.filter(ma => listens.test(ma.toString()))
  }

  dialFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    return multiaddrs.filter(ma => this.init.dials.test(ma.toString()))
  }

  createListener (options: CreateListenerOptions): Listener {
    if (this.init.listens == null) {
      throw new Error(`${this.init.name} does not listen`)
    }
    return new LazyListener(async () => (await this.load()).createListener(options))
  }

  async dial (ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    return (await this.load()).dial(ma, options)
  }

  private async load (): Promise<Transport & Partial<Startable>> {
    this.transport ??= this.init.load().then(async create => {
      const transport: Transport & Partial<Startable> = create(this.components)
      await transport.start?.()
      return transport
    })
    return this.transport
  }
}

/** libp2p creates listeners synchronously: this one creates the real listener once the transport has loaded, and passes its events on. */
class LazyListener extends TypedEventEmitter<ListenerEvents> implements Listener {
  private readonly create: () => Promise<Listener>
  private listener?: Listener

  constructor (create: () => Promise<Listener>) {
    super()
    this.create = create
  }

  async listen (multiaddr: Multiaddr): Promise<void> {
    const listener = await this.create()
    this.listener = listener
    for (const type of ['listening', 'close', 'error'] as const) {
      listener.addEventListener(type, event => {
        this.safeDispatchEvent(type, 'detail' in event ? { detail: event.detail } : {})
      })
    }
    await listener.listen(multiaddr)
  }

  getAddrs (): Multiaddr[] {
    return this.listener?.getAddrs() ?? []
  }

  async close (): Promise<void> {
    await this.listener?.close()
  }

  updateAnnounceAddrs (addrs: Multiaddr[]): void {
    this.listener?.updateAnnounceAddrs(addrs)
  }
}
