import { TypedEventEmitter } from 'main-event'
import { CID } from 'multiformats/cid'
import { MAX_ADVERTISED_ADDRS, MAX_ADVERTISED_MODULES, MAX_JOB_MEMORY_BYTES, SOFTWARE_VERSION } from '../constants.ts'
import { ABIS, type Executor } from '../runtime/executor.ts'
import { JobServer, type ServedJob } from './job-server.ts'
import { faultyExecutor, type TestFault } from './test-faults.ts'
import type { AdvertContent, CapacityService } from '../net/capacity.ts'
import type { CapacityAdvert } from '../wire/advert.ts'
import type { Signer } from '../wire/receipt.ts'
import type { ContentStore } from '../store/content.ts'
import type { StorageHolder } from '../storage/holder.ts'
import type { Libp2p } from '@libp2p/interface'

/** Our share of the network's work, while we contribute. */
export interface Contribution {
  threads: number
  running: number
}

export interface ContributeOptions {
  /** Jobs to run at once. @default 1 */
  threads?: number
  /** Bytes of storage to offer others (pins of their content, see `Peer.store`). Unset: keep the current offer. */
  storageBytes?: number
}

export interface ContributorEvents {
  /** Started, stopped, or changed load: read `contribution`. */
  'contribution': CustomEvent<Contribution | undefined>
  'work:start': CustomEvent<ServedJob>
  'work:end': CustomEvent<ServedJob>
}

export interface ContributorComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'peerId' | 'getMultiaddrs'>
  signer: Signer
  content: ContentStore
  capacity: Pick<CapacityService, 'setLocal' | 'publishSoon'>
  createExecutor: (slots: number) => Executor
  platform: CapacityAdvert['platform']
  /** What we offer as a storage holder, for our advert. */
  storage: Pick<StorageHolder, 'advertFields' | 'setOffer'>
}

export interface ContributorInit {
  /** The largest per-job memory limit we accept as a worker. @default MAX_JOB_MEMORY_BYTES */
  maxJobMemoryBytes?: number
  /** Test aid, never for production: misbehave as a worker on purpose (see TestFault). */
  fault?: TestFault
}

/**
 * The worker side of a peer: while contributing, an executor and a job
 * server run jobs for others, and our advert says what we offer. Off until
 * `contribute` is called: only with the user's consent.
 */
export class Contributor extends TypedEventEmitter<ContributorEvents> {
  private readonly components: ContributorComponents
  private readonly init: ContributorInit
  private worker?: { server: JobServer, executor: Executor }

  constructor (components: ContributorComponents, init: ContributorInit = {}) {
    super()
    this.components = components
    this.init = init
  }

  get contribution (): Contribution | undefined {
    const server = this.worker?.server
    return server == null ? undefined : { threads: server.totalSlots, running: server.totalSlots - server.freeSlots }
  }

  /** Our advert: with our slots while contributing, else with none (a requester announcing itself). */
  advert (): AdvertContent {
    const { worker } = this
    return {
      v: 1,
      slots: { total: worker?.server.totalSlots ?? 0, free: worker?.server.freeSlots ?? 0 },
      memoryBytes: this.init.maxJobMemoryBytes ?? MAX_JOB_MEMORY_BYTES,
      ...this.components.storage.advertFields(),
      abis: [...ABIS],
      cached: (worker?.executor.cachedModules() ?? []).slice(0, MAX_ADVERTISED_MODULES).map(cid => CID.parse(cid)),
      addrs: this.components.libp2p.getMultiaddrs().slice(0, MAX_ADVERTISED_ADDRS).map(ma => ma.bytes),
      version: SOFTWARE_VERSION,
      platform: this.components.platform
    }
  }

  /** Starts (or resizes) our contribution with `threads` slots, and advertises them. */
  async contribute (options: ContributeOptions = {}): Promise<void> {
    const threads = Math.max(1, Math.floor(options.threads ?? 1))
    if (options.storageBytes != null) {
      this.offerStorage(options.storageBytes)
    }
    if (this.worker?.server.totalSlots === threads) {
      return
    }
    await this.stop()
    const { libp2p, signer, content, capacity } = this.components
    const healthy = this.components.createExecutor(threads)
    const executor = this.init.fault != null ? faultyExecutor(healthy, this.init.fault) : healthy
    await executor.start()
    const server = new JobServer({ registrar: libp2p, signer, peerId: libp2p.peerId, executor, content }, { slots: threads, fault: this.init.fault })
    server.addEventListener('slots', this.onSlotsChange)
    server.addEventListener('job:start', this.onWorkStart)
    server.addEventListener('job:end', this.onWorkEnd)
    await server.start()
    this.worker = { server, executor }
    capacity.setLocal(() => this.advert())
    this.safeDispatch('contribution', this.contribution)
  }

  /**
   * Offers `bytes` of storage to others' content (0 withdraws the offer),
   * with or without compute, and advertises it: a peer lending only its
   * storage advertises no slots.
   */
  offerStorage (bytes: number): void {
    this.components.storage.setOffer(bytes)
    if (this.worker == null) {
      this.components.capacity.setLocal(() => this.advert())
    }
  }

  start (): void {}

  /** Stops taking jobs, tells peers (a zero-slot advert) and stops the jobs still running. */
  async stop (): Promise<void> {
    const worker = this.worker
    if (worker == null) {
      return
    }
    const withdrawn = { ...this.advert(), slots: { total: 0, free: 0 } }
    this.worker = undefined
    this.components.capacity.setLocal(() => withdrawn)
    worker.server.removeEventListener('slots', this.onSlotsChange)
    worker.server.removeEventListener('job:start', this.onWorkStart)
    worker.server.removeEventListener('job:end', this.onWorkEnd)
    await worker.server.stop()
    await worker.executor.stop()
    this.safeDispatch('contribution', undefined)
  }

  private safeDispatch<K extends keyof ContributorEvents>(type: K, detail: ContributorEvents[K] extends CustomEvent<infer D> ? D : never): void {
    try {
      this.dispatchEvent(new CustomEvent(type, { detail }))
    } catch {
      // a listener threw: the app's bug, which must not break serving jobs
    }
  }

  private readonly onSlotsChange = (): void => {
    this.components.capacity.publishSoon()
    this.safeDispatch('contribution', this.contribution)
  }

  private readonly onWorkStart = (event: Event): void => {
    this.safeDispatch('work:start', (event as CustomEvent<ServedJob>).detail)
  }

  private readonly onWorkEnd = (event: Event): void => {
    this.safeDispatch('work:end', (event as CustomEvent<ServedJob>).detail)
  }
}

export function contributor (init: ContributorInit = {}): (components: ContributorComponents) => Contributor {
  return components => new Contributor(components, init)
}
