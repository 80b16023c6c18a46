import { KEEP_ALIVE, type Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { BOOTSTRAP_DIAL_ATTEMPTS, BOOTSTRAP_DIAL_TIMEOUT_MS, BOOTSTRAP_RETRY_MS } from '../constants.ts'
import { BootstrapError } from '../errors.ts'

export interface BootstrapDialerComponents {
  libp2p: Pick<Libp2p, 'dial' | 'peerStore'>
}

export interface BootstrapDialerInit {
  /** Multiaddrs of bootstrap nodes to join through. Empty: a lone peer that others dial. */
  bootstrap: readonly string[]
}

/**
 * Joins the mesh through bootstrap nodes: dials them all at once (a node
 * that drops the handshake is dialled again, up to BOOTSTRAP_DIAL_ATTEMPTS),
 * and tags each one keep-alive so libp2p redials a lost one by itself.
 */
export class BootstrapDialer {
  private readonly components: BootstrapDialerComponents
  private readonly bootstrap: readonly string[]

  constructor (components: BootstrapDialerComponents, init: BootstrapDialerInit) {
    this.components = components
    this.bootstrap = init.bootstrap
  }

  /** Rejects with BootstrapError when none of the nodes answers. */
  async join (signal?: AbortSignal): Promise<void> {
    if (this.bootstrap.length === 0) {
      return
    }
    const { libp2p } = this.components
    const failures: string[] = []
    await Promise.all(this.bootstrap.map(async addr => {
      for (let attempt = 1; ; attempt++) {
        try {
          const ma = multiaddr(addr)
          const connection = await libp2p.dial(ma, { signal: AbortSignal.any([AbortSignal.timeout(BOOTSTRAP_DIAL_TIMEOUT_MS), ...(signal != null ? [signal] : [])]) })
          await libp2p.peerStore.merge(connection.remotePeer, { multiaddrs: [ma], tags: { [KEEP_ALIVE]: { value: 1 } } })
          return
        } catch (err) {
          const failure = dialFailure(err)
          // a node that answered but dropped the handshake is often just busy (many peers starting at once): try again;
          // nothing listening, a bad address, a timeout (already BOOTSTRAP_DIAL_TIMEOUT_MS long) or our own abort is final
          if (attempt >= BOOTSTRAP_DIAL_ATTEMPTS || signal?.aborted === true || /ECONNREFUSED|ENOTFOUND|EADDRNOTAVAIL|invalid|unsupported|abort|timed? ?out/i.test(failure)) {
            failures.push(`${addr}: ${failure}`)
            return
          }
          await new Promise(resolve => setTimeout(resolve, BOOTSTRAP_RETRY_MS * attempt))
        }
      }
    }))
    if (failures.length === this.bootstrap.length) {
      throw new BootstrapError(`could not reach any bootstrap node (${failures.join('; ')})`)
    }
  }
}

/**
 * What a failed dial says. Browsers reject a refused WebSocket with an
 * `Event` or an error without a message, which would read "undefined".
 */
function dialFailure (err: unknown): string {
  if (err instanceof Error) {
    const inner = err instanceof AggregateError ? err.errors.map(dialFailure).filter(text => text !== '') : []
    return [err.message, ...inner].filter(text => text != null && text !== '').join(': ') || err.name
  }
  return typeof (err as { type?: unknown })?.type === 'string' ? `${(err as { type: string }).type} event (the connection was refused or dropped)` : String(err)
}

export function bootstrapDialer (init: BootstrapDialerInit): (components: BootstrapDialerComponents) => BootstrapDialer {
  return components => new BootstrapDialer(components, init)
}
