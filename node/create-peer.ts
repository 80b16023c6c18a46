import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemoryBlockstore } from 'blockstore-core'
import { FsBlockstore } from 'blockstore-fs'
import { MemoryDatastore } from 'datastore-core'
import { FsDatastore } from 'datastore-fs'
import { explainStartError } from './start-errors.ts'
import { LevelDatastore } from 'datastore-level'
import { createHeliaLight } from 'helia'
import { ContentStore } from '../protocol/store/content.ts'
import { Peer, type ContributeOptions, type PeerInit, type PeerServices } from '../protocol/peer.ts'
import { TEST_FAULTS, type TestFault } from '../protocol/worker/test-faults.ts'
import { resolveBootstrap } from './bootstrap-list.ts'
import { WorkerPoolExecutor } from './executor/worker-pool.ts'
import { loadOrCreateIdentity } from './identity.ts'
import { nodeSigner } from './signing.ts'
import { nodeLibp2pOptions } from './libp2p-options.ts'
import { prometheusRegistry } from './prometheus.ts'
import type { Libp2p } from '@libp2p/interface'

export interface CreatePeerOptions extends Partial<Omit<PeerInit, 'bootstrap'>> {
  /**
   * Bootstrap multiaddrs. Unset: `$WASMESH_BOOTSTRAP`, else the local network
   * `npm start` runs. An empty list makes a lone peer that others dial.
   */
  bootstrap?: readonly string[]
  /** Keep identity, blocks and peer data here, so a restart keeps the peer id and cached content. Unset: all in memory. */
  dataDir?: string
  /**
   * Keep the record of workers (scores, bans and their evidence) here
   * instead of in `dataDir`: one file per worker, safe to share between
   * processes, so short-lived requesters (each `wasmesh run`) remember a
   * liar they caught. Unset: in `dataDir` (or in memory).
   */
  reputationDir?: string
  /** @default ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'] */
  listen?: string[]
  /** Start contributing right away with these options. */
  contribute?: ContributeOptions
  /** Collect libp2p's metrics and wasmesh's (jobs, slots, storage) for Prometheus: read them with `peer.metrics()`. @default false */
  metrics?: boolean
  signal?: AbortSignal
}

/**
 * Creates and starts a wasmesh peer in Node: Helia with file-backed (or
 * in-memory) stores, libp2p over TCP and WebSockets, and jobs sandboxed in
 * worker_threads.
 */
export async function createPeer (options: CreatePeerOptions = {}): Promise<Peer> {
  // an explicit list, even an empty one (a lone peer), is taken as given
  const bootstrap = options.bootstrap != null ? [...options.bootstrap] : await resolveBootstrap()
  const { dataDir } = options
  if (dataDir != null) {
    await mkdir(dataDir, { recursive: true })
  }
  const privateKey = dataDir != null ? await loadOrCreateIdentity(dataDir) : await generateKeyPair('Ed25519')
  const blockstore = dataDir != null ? new FsBlockstore(join(dataDir, 'blocks')) : new MemoryBlockstore()
  const datastore = dataDir != null ? new LevelDatastore(join(dataDir, 'datastore')) : new MemoryDatastore()
  if (blockstore instanceof FsBlockstore) {
    await blockstore.open()
  }
  if (datastore instanceof LevelDatastore) {
    await datastore.open().catch((err: unknown) => { throw explainStartError(err, { dataDir }) })
  }
  const reputationStore = options.reputationDir != null ? new FsDatastore(options.reputationDir) : undefined
  await reputationStore?.open()
  const prometheus = options.metrics === true ? await prometheusRegistry() : undefined
  const helia = withBitswap(withLibp2pLight(createHeliaLight({ blockstore, datastore }), {
    ...nodeLibp2pOptions({
      privateKey,
      listen: options.listen ?? ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws']
    }),
    ...(prometheus != null ? { metrics: prometheus.metrics } : {})
  }))
  await helia.start().catch((err: unknown) => { throw explainStartError(err, {}) })
  const peer = new Peer({
    libp2p: helia.libp2p as unknown as Libp2p<PeerServices>,
    signer: nodeSigner(privateKey),
    content: new ContentStore(helia, blockstore),
    datastore: helia.datastore,
    ...(reputationStore != null ? { reputationStore } : {}),
    createExecutor: slots => new WorkerPoolExecutor({ slots }),
    platform: 'node',
    ...(prometheus != null ? { metricsText: async () => prometheus.registry.metrics() } : {}),
    shutdown: async () => {
      await helia.stop()
      if (blockstore instanceof FsBlockstore) {
        await blockstore.close()
      }
      if (datastore instanceof LevelDatastore) {
        await datastore.close()
      }
      await reputationStore?.close()
    }
  }, { ...options, bootstrap, fault: options.fault ?? testFaultFromEnv() })
  await peer.start(options.signal)
  if (options.contribute != null) {
    await peer.contribute(options.contribute)
  }
  return peer
}

/** `WASMESH_TEST_FAULT` makes a worker misbehave on purpose, for fault tests. Off unless set. */
function testFaultFromEnv (): TestFault | undefined {
  const fault = process.env.WASMESH_TEST_FAULT
  if (fault == null || fault === '') {
    return undefined
  }
  if (!(TEST_FAULTS as readonly string[]).includes(fault)) {
    throw new Error(`WASMESH_TEST_FAULT=${fault} is not one of ${TEST_FAULTS.join(', ')}`)
  }
  return fault as TestFault
}
