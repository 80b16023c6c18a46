import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { LevelDatastore } from 'datastore-level'
import { MemoryDatastore } from 'datastore-core'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createLibp2p } from 'libp2p'
import { CapacityService } from '../protocol/net/capacity.ts'
import { FunctionRegistry } from '../protocol/functions/registry.ts'
import { explainStartError } from './start-errors.ts'
import { loadOrCreateIdentity } from './identity.ts'
import { nodeLibp2pOptions, type TlsFiles } from './libp2p-options.ts'
import { prometheusRegistry } from './prometheus.ts'
import type { PeerServices } from '../protocol/peer.ts'
import type { Libp2p } from '@libp2p/interface'

export interface BootstrapOptions {
  /** TCP port; WebSockets listens on port + 1. 0 picks free ports. @default 0 */
  port?: number
  /** @default '127.0.0.1' */
  host?: string
  /** Keeps the node's identity (so its multiaddr stays the same across restarts). */
  dataDir?: string
  /**
   * Serve WebSockets as `wss://` (`/tls/ws`) with this certificate and key,
   * for browsers on HTTPS pages, instead of plain `ws://` behind a TLS proxy.
   */
  tls?: TlsFiles
  /** Collect libp2p's metrics (and ours) for Prometheus; read them with `BootstrapNode.metrics()`. @default false */
  metrics?: boolean
}

/** What a health check reports. */
export interface BootstrapHealth {
  status: 'ok'
  peerId: string
  /** Open connections. */
  connections: number
  /** Peers advertising capacity through this node. */
  workers: number
}

export interface BootstrapNode {
  peerId: string
  /** Dialable multiaddrs, each ending in /p2p/<peer id>. */
  addresses: () => string[]
  /** Peers advertising capacity through this node. */
  capacity: CapacityService
  /** Function manifests known to this node, which it hands to every peer that joins. */
  functions: FunctionRegistry
  libp2p: Libp2p<PeerServices>
  health: () => BootstrapHealth
  /** The Prometheus text exposition (libp2p's metrics, Node's process metrics, `wasmesh_*`); only with `metrics: true`. */
  metrics?: () => Promise<string>
  stop: () => Promise<void>
}

/**
 * A bootstrap and circuit-relay-v2 node: the rendezvous where peers meet,
 * gossip adverts pass, and browsers reserve relay slots. It runs no jobs.
 */
export async function startBootstrap (options: BootstrapOptions = {}): Promise<BootstrapNode> {
  const host = options.host ?? '127.0.0.1'
  const port = options.port ?? 0
  const family = host.includes(':') ? 'ip6' : 'ip4'
  let datastore = new MemoryDatastore() as MemoryDatastore | LevelDatastore
  if (options.dataDir != null) {
    await mkdir(options.dataDir, { recursive: true })
    datastore = new LevelDatastore(join(options.dataDir, 'datastore'))
    await datastore.open().catch((err: unknown) => { throw explainStartError(err, { dataDir: options.dataDir }) })
  }
  const privateKey = options.dataDir != null ? await loadOrCreateIdentity(options.dataDir) : await generateKeyPair('Ed25519')
  const prometheus = options.metrics === true ? await prometheusRegistry() : undefined
  const libp2p = await createLibp2p({
    ...nodeLibp2pOptions({
      privateKey,
      listen: [`/${family}/${host}/tcp/${port}`, `/${family}/${host}/tcp/${port === 0 ? 0 : port + 1}/${options.tls != null ? 'tls/ws' : 'ws'}`],
      relay: true,
      ...(options.tls != null ? { tls: options.tls } : {})
    }),
    datastore,
    ...(prometheus != null ? { metrics: prometheus.metrics } : {})
  }).catch((err: unknown) => { throw explainStartError(err, {}) }) as unknown as Libp2p<PeerServices>
  // subscribing makes this node forward adverts, and its validator drops malformed ones before they spread
  const capacity = new CapacityService({ pubsub: libp2p.services.pubsub, peerId: libp2p.peerId, events: libp2p })
  capacity.start()
  // the rendezvous also keeps function manifests, so a peer that joins after the owner left still resolves them
  const functions = new FunctionRegistry({ pubsub: libp2p.services.pubsub, libp2p, events: libp2p, datastore })
  await functions.start()
  libp2p.metrics?.registerMetric('wasmesh_capacity_workers', { help: 'Peers advertising capacity through this node', calculate: () => capacity.peers().length })
  return {
    peerId: libp2p.peerId.toString(),
    addresses: () => libp2p.getMultiaddrs().map(ma => ma.toString()),
    capacity,
    libp2p,
    functions,
    health: () => ({ status: 'ok', peerId: libp2p.peerId.toString(), connections: libp2p.getConnections().length, workers: capacity.peers().length }),
    ...(prometheus != null ? { metrics: async () => prometheus.registry.metrics() } : {}),
    stop: async () => {
      await functions.stop()
      capacity.stop()
      await libp2p.stop()
      if (datastore instanceof LevelDatastore) {
        await datastore.close()
      }
    }
  }
}
