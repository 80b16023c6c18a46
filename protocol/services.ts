/**
 * The one place where a peer's services are built and wired: each service is
 * made by its factory from the narrow components it needs. The platform
 * composition roots (node/create-peer.ts, web/create-peer.ts) supply the
 * platform parts; the Peer facade starts and stops what this returns.
 */
import { bootstrapDialer, type BootstrapDialer } from './net/bootstrap.ts'
import { capacityService, type CapacityService } from './net/capacity.ts'
import { jobClient, type JobClient } from './net/job-client.ts'
import { Functions } from './functions/functions.ts'
import { functionRegistry, type FunctionRegistry } from './functions/registry.ts'
import { Auditor } from './job/auditor.ts'
import { BatchRunner } from './job/batch-runner.ts'
import { Chunker } from './job/chunker.ts'
import { JobBuilder } from './job/submit.ts'
import { reputation as reputationService, type Reputation } from './job/reputation.ts'
import { requester as requesterService, type Requester, type RequesterInit } from './job/requester.ts'
import { Scheduler } from './job/scheduler.ts'
import { BatchStore } from './store/batches.ts'
import { ResultStore } from './store/results.ts'
import { contributor as contributorService, type Contributor, type ContributorInit } from './worker/contributor.ts'
import { storageHolder, type StorageHolder, type StorageHolderInit } from './storage/holder.ts'
import { StorageClient } from './storage/client.ts'
import type { Executor } from './runtime/executor.ts'
import type { ContentStore } from './store/content.ts'
import type { CapacityAdvert } from './wire/advert.ts'
import type { Signer } from './wire/receipt.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Libp2p, Startable } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

export type PeerServices = {
  pubsub: GossipSub
}

/** What the composition roots (node/, web/) plug in. */
export interface PeerComponents {
  libp2p: Libp2p<PeerServices>
  /** Signs our receipts: the peer's private key, or a faster signer for the same key. */
  signer: Signer
  content: ContentStore
  /** Where accepted results and batches persist (Helia's datastore). */
  datastore: Datastore
  /** Where reputation and evidence persist. @default datastore */
  reputationStore?: Datastore
  createExecutor: (slots: number) => Executor
  platform: CapacityAdvert['platform']
  /** Stops everything the composition root started (Helia, libp2p, stores). */
  shutdown: () => Promise<void>
  /** The text exposition of `libp2p.metrics` (libp2p's and wasmesh's), when the composition root collects them for Prometheus. */
  metricsText?: () => Promise<string>
}

export interface PeerInit extends RequesterInit, ContributorInit, StorageHolderInit {
  /** Multiaddrs of bootstrap nodes to join through. Empty: a lone peer that others dial. */
  bootstrap: readonly string[]
  /** How often adverts are re-published in a small mesh. @default ADVERT_INTERVAL_MS */
  advertIntervalMs?: number
}

/** A peer's services, in the order they start (and the reverse of the order they stop). */
export interface Services {
  reputation: Reputation
  capacity: CapacityService
  client: JobClient
  auditor: Auditor
  requester: Requester
  /** The peer's `run` calls: one chunker, so many tiny jobs in flight at once travel in chunks. */
  runs: Chunker
  contributor: Contributor
  holder: StorageHolder
  storage: StorageClient
  bootstrap: BootstrapDialer
  jobs: JobBuilder
  batches: BatchRunner
  functions: FunctionRegistry
  calls: Functions
}

export function createServices (components: PeerComponents, init: PeerInit): Services {
  const { libp2p, content, datastore } = components
  const reputation = reputationService()({ datastore: components.reputationStore ?? datastore })
  const knows = (peerId: string): boolean => reputation.hasDelivered(peerId) || libp2p.getConnections().some(c => c.remotePeer.toString() === peerId)
  const capacity = capacityService({ intervalMs: init.advertIntervalMs })({ pubsub: libp2p.services.pubsub, peerId: libp2p.peerId, events: libp2p, knows })
  const client = jobClient()({ libp2p, events: libp2p, capacity })
  const results = new ResultStore({ datastore, content })
  const auditor = new Auditor({ content, createExecutor: components.createExecutor })
  const requester = requesterService(init)({ peerId: libp2p.peerId, capacity, client, content, scheduler: new Scheduler({ reputation, client }), reputation, results, auditor })
  const jobs = new JobBuilder({ content })
  const functions = functionRegistry()({ pubsub: libp2p.services.pubsub, libp2p, events: libp2p, datastore })
  const holder = storageHolder(init)({ libp2p, signer: components.signer, content, datastore, capacity, reputation })
  const storage = new StorageClient({ libp2p, signer: components.signer, content, capacity, reputation, holder })
  const contributor = contributorService(init)({ libp2p, signer: components.signer, content, capacity, createExecutor: components.createExecutor, platform: components.platform, storage: holder })
  return {
    reputation,
    capacity,
    client,
    auditor,
    requester,
    runs: new Chunker(requester),
    contributor,
    holder,
    storage,
    bootstrap: bootstrapDialer(init)({ libp2p }),
    jobs,
    batches: new BatchRunner({ jobs, requester, batches: new BatchStore({ datastore }), results }),
    functions,
    calls: new Functions({ peerId: libp2p.peerId.toString(), signer: components.signer, registry: functions, jobs, requester, storage, capacity })
  }
}

/**
 * The services with a lifecycle (`Startable`), for libp2p's `start(...)` and
 * `stop(...)`. The contributor comes first: its stop withdraws our advert,
 * which must go out before the capacity service unsubscribes.
 */
export function startables (services: Services): Startable[] {
  return [services.contributor, services.holder, services.functions, services.requester, services.auditor, services.client, services.capacity, services.reputation]
}
