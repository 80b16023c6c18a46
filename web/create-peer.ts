/**
 * The browser composition root: the same Peer as node/create-peer.ts, built
 * from browser parts. libp2p dials WebSockets (bootstrap/relay), listens on a
 * circuit-relay reservation and WebRTC so other tabs and Node peers can reach
 * this tab directly; Helia keeps blocks in IndexedDB; jobs run in Web Workers.
 */
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { MemoryBlockstore } from 'blockstore-core'
import { IDBBlockstore } from 'blockstore-idb'
import { IDBDatastore } from 'datastore-idb'
import { createHeliaLight } from 'helia'
import { openDB } from 'idb'
import { ContentStore } from '../protocol/store/content.ts'
import { meshPubsub } from '../protocol/net/gossip.ts'
import { BootstrapError } from '../protocol/errors.ts'
import { Peer, type ContributeOptions, type PeerInit, type PeerServices } from '../protocol/peer.ts'
import { CID } from 'multiformats/cid'
import { dialPolicy } from './dial-policy.ts'
import { webSigner } from './signing.ts'
import { WebWorkerExecutor, type CachedModuleEntry, type ModuleCachePersistence } from './executor.ts'
import { DEFAULT_WASMER_SDK_URL, webWasixRunner } from './wasix.ts'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

export interface CreatePeerOptions extends Partial<Omit<PeerInit, 'bootstrap' | 'fault'>> {
  /** Bootstrap multiaddrs (WebSockets: `/ws` or `/wss`). Required in browsers: there is no local network file. */
  bootstrap: readonly string[]
  /**
   * Name of the IndexedDB databases that keep identity, blocks and peer data,
   * so a reload keeps the peer id and cached content. `false`: all in memory.
   * @default 'wasmesh'
   */
  storage?: string | false
  /** Start contributing right away with these options. */
  contribute?: ContributeOptions
  /** How long to wait for a relay reservation (our dialable address) after joining. @default 10000 */
  reservationTimeoutMs?: number
  /** Called with the peer before it joins, to attach listeners that see the join. */
  onCreated?: (peer: Peer) => void
  /**
   * Where this page serves @wasmer/sdk's `dist/index.js` unbundled (with its
   * `pkg/` beside `dist/`), for WASIX jobs; a bundler breaks the SDK's
   * workers (docs/runtimes.md). The wasmesh page serves it at the default.
   * `false`: WASIX jobs fail with ForbiddenImportError.
   * @default './vendor/wasmer-sdk/dist/index.js', relative to the page
   */
  wasmerSdkUrl?: string | false
  signal?: AbortSignal
}

/**
 * Creates and starts a wasmesh peer in the browser. Resolves once it has
 * joined through a bootstrap node and holds a relay reservation (or the
 * reservation wait timed out); rejects with BootstrapError when no bootstrap
 * node can be reached.
 */
export async function createPeer (options: CreatePeerOptions): Promise<Peer> {
  const bootstrap = [...options.bootstrap]
  if (bootstrap.length === 0) {
    throw new BootstrapError('no bootstrap node given: a browser peer needs at least one WebSocket multiaddr of a bootstrap node')
  }
  for (const addr of bootstrap) {
    try {
      multiaddr(addr)
    } catch (err) {
      throw new BootstrapError(`"${addr}" is not a multiaddr: ${(err as Error).message}`, { cause: err })
    }
  }
  const storage = options.storage ?? 'wasmesh'
  const privateKey = storage === false ? await generateKeyPair('Ed25519') : await loadOrCreateIdentity(`${storage}-identity`)
  const blockstore = storage === false ? new MemoryBlockstore() : new IDBBlockstore(`${storage}-blocks`)
  const datastore = storage === false ? undefined : new IDBDatastore(`${storage}-data`)
  if (blockstore instanceof IDBBlockstore) {
    await blockstore.open()
  }
  await datastore?.open()

  const denyDial = dialPolicy({ pageHost: globalThis.location?.hostname, bootstrap })
  const helia = withBitswap(withLibp2pLight(createHeliaLight({ blockstore, ...(datastore != null ? { datastore } : {}) }), {
    privateKey,
    addresses: {
      listen: ['/p2p-circuit', '/webrtc'],
      // a bare circuit address gives a limited (relayed) connection that cannot carry jobs: announce only the WebRTC upgrade
      announceFilter: (addrs: Multiaddr[]) => addrs.filter(ma => ma.toString().includes('/webrtc'))
    },
    transports: [webSockets(), circuitRelayTransport(), webRTC({ rtcConfiguration: { iceServers: [] } })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: {
      denyDialMultiaddr: async (ma: Multiaddr) => denyDial(ma)
    },
    peerDiscovery: [],
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: meshPubsub()
    }
  }))
  await helia.start()
  const libp2p = helia.libp2p as unknown as Libp2p<PeerServices>
  const content = new ContentStore(helia, blockstore)
  const peer = new Peer({
    libp2p,
    signer: await webSigner(privateKey),
    content,
    datastore: helia.datastore,
    createExecutor: slots => new WebWorkerExecutor({
      slots,
      ...(storage !== false ? { persist: modulePersistence(`${storage}-modules`, content) } : {}),
      ...(options.wasmerSdkUrl !== false ? { wasix: webWasixRunner(new URL(options.wasmerSdkUrl ?? DEFAULT_WASMER_SDK_URL, globalThis.location.href).href) } : {})
    }),
    platform: 'browser',
    shutdown: async () => {
      await helia.stop()
      if (blockstore instanceof IDBBlockstore) {
        await blockstore.close()
      }
      await datastore?.close()
    }
  }, { ...options, bootstrap, storageVolatile: true }) // a tab's IndexedDB may be cleared or closed at any time
  options.onCreated?.(peer)
  await peer.start(options.signal)
  await waitForReservation(libp2p, options.reservationTimeoutMs ?? 10_000, options.signal)
  if (options.contribute != null) {
    await peer.contribute(options.contribute)
  }
  return peer
}

/** Waits until we have a `/p2p-circuit/webrtc` address, which requesters need to reach this tab. */
async function waitForReservation (libp2p: Libp2p, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const ready = (): boolean => libp2p.getMultiaddrs().some(ma => ma.toString().includes('/p2p-circuit/webrtc'))
  if (ready()) {
    return true
  }
  return new Promise(resolve => {
    const done = (value: boolean): void => {
      clearTimeout(timer)
      libp2p.removeEventListener('self:peer:update', onUpdate)
      libp2p.removeEventListener('transport:listening', onUpdate)
      signal?.removeEventListener('abort', onAbort)
      resolve(value)
    }
    const onUpdate = (): void => { if (ready()) done(true) }
    const onAbort = (): void => { done(false) }
    const timer = setTimeout(() => { done(false) }, timeoutMs)
    // self:peer:update comes a debounced second after the address exists; the listener event does not
    libp2p.addEventListener('self:peer:update', onUpdate)
    libp2p.addEventListener('transport:listening', onUpdate)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Loads the Ed25519 identity from IndexedDB, creating it on first use, so a reload keeps the peer id. */
async function loadOrCreateIdentity (dbName: string): Promise<PrivateKey> {
  const db = await openDB(dbName, 1, {
    upgrade (database) {
      database.createObjectStore('keys')
    }
  })
  try {
    const stored = await db.get('keys', 'self') as Uint8Array | undefined
    if (stored != null) {
      return privateKeyFromProtobuf(new Uint8Array(stored))
    }
    const key = await generateKeyPair('Ed25519')
    // add (not put): when two tabs race, the first key wins and the other tab reads it
    try {
      await db.add('keys', privateKeyToProtobuf(key), 'self')
      return key
    } catch {
      return privateKeyFromProtobuf(new Uint8Array(await db.get('keys', 'self') as Uint8Array))
    }
  } finally {
    db.close()
  }
}

/** The compiled-module list, in IndexedDB; the module bytes themselves are blocks in Helia's IndexedDB blockstore. */
function modulePersistence (dbName: string, content: ContentStore): ModuleCachePersistence {
  const open = async () => openDB(dbName, 1, {
    upgrade (database) {
      database.createObjectStore('modules')
    }
  })
  return {
    load: async () => {
      const db = await open()
      try {
        return (await db.get('modules', 'compiled') as CachedModuleEntry[] | undefined) ?? []
      } finally {
        db.close()
      }
    },
    save: async entries => {
      const db = await open()
      try {
        await db.put('modules', entries, 'compiled')
      } finally {
        db.close()
      }
    },
    bytes: async (cid, signal) => {
      const parsed = CID.parse(cid)
      if (!await content.has(parsed, signal)) {
        return undefined
      }
      return content.get(parsed, { signal, maxBytes: 64 * 1024 * 1024, what: 'module' })
    }
  }
}
