import { start, stop } from '@libp2p/interface'
import { setMaxListeners, TypedEventEmitter } from 'main-event'
import { ANNOUNCE_TIMEOUT_MS, MAP_CONCURRENCY } from './constants.ts'
import { describeConnections, type PeerConnection } from './net/connections.ts'
import { runMany, type MapResult, type PendingJob } from './job/run-many.ts'
import { Chunker } from './job/chunker.ts'
import type { BatchSummary } from './job/batch-runner.ts'
import { createServices, startables, type PeerComponents, type PeerInit, type Services } from './services.ts'
import { relayPeerEvents, type PeerEvents } from './peer-events.ts'
import { registerPeerMetrics } from './peer-metrics.ts'
import type { ContributeOptions, Contribution } from './worker/contributor.ts'
import type { AdvertContent, PeerCapacity } from './net/capacity.ts'
import type { InputRef, JobOptions, ModuleRef } from './job/submit.ts'
import type { Evidence, PeerRecord } from './job/reputation.ts'
import type { RunResult } from './job/requester.ts'
import type { TreeEntry } from './runtime/executor.ts'
import type { CallOptions, CallResult, DeployOptions, Deployment } from './functions/functions.ts'
import type { KnownFunction } from './functions/registry.ts'
import type { FunctionRequest } from './functions/wagi.ts'
import type { SignedManifest } from './wire/function.ts'
import type { StoreOptions, StoreResult, Holding, HoldersOptions } from './storage/client.ts'
import type { StorageStats } from './storage/holder.ts'
import type { StorageEvidence } from './job/reputation.ts'
import { CID } from 'multiformats/cid'

export type { JobEvent, RunResult } from './job/requester.ts'
export type { MapResult } from './job/run-many.ts'
export type { PeerEvents } from './peer-events.ts'
export type { InputRef, ModuleRef } from './job/submit.ts'
export type { ContributeOptions, Contribution } from './worker/contributor.ts'
export type { PeerComponents, PeerInit, PeerServices } from './services.ts'
export type { ConnectionTransport, PeerConnection } from './net/connections.ts'
export type { BatchSummary } from './job/batch-runner.ts'
export type { CallOptions, CallResult, DeployOptions, Deployment } from './functions/functions.ts'
export type { KnownFunction } from './functions/registry.ts'
export type { FunctionRequest, FunctionResponse } from './functions/wagi.ts'
export type { StoreOptions, StoreResult, Holding, HoldersOptions } from './storage/client.ts'
export type { StorageStats } from './storage/holder.ts'
export type { StorageEvidence } from './job/reputation.ts'

export type PeerStatus = 'starting' | 'started' | 'stopping' | 'stopped'

export interface RunOptions extends JobOptions {
  module: ModuleRef
  input?: InputRef
  /**
   * Take the result from this peer's result store if the same job (same
   * CID) was accepted before, and store new results: a restarted batch does
   * not run finished jobs again, and identical jobs in flight at once run
   * once. Callers sharing a run share its outcome, an abort included.
   * @default false
   */
  resume?: boolean
  signal?: AbortSignal
}

export interface MapOptions extends Omit<RunOptions, 'module' | 'input' | 'signal'> {
  signal?: AbortSignal
  /** Jobs in flight at once. @default MAP_CONCURRENCY */
  concurrency?: number
}

/**
 * A wasmesh peer: requester, and worker when asked to contribute. Create one
 * with `createPeer` from the package entry for your platform. This class only
 * delegates: the services it holds are built in `services.ts`.
 */
export class Peer extends TypedEventEmitter<PeerEvents> {
  /** This peer's id: the libp2p peer id whose key signs its receipts. */
  readonly id: string
  status: PeerStatus = 'stopped'

  private readonly components: PeerComponents
  private readonly services: Services
  private announcing?: AbortController
  private detachEvents?: () => void

  constructor (components: PeerComponents, init: PeerInit) {
    super()
    this.components = components
    this.id = components.libp2p.peerId.toString()
    this.services = createServices(components, init)
    if (components.libp2p.metrics != null) {
      registerPeerMetrics(components.libp2p.metrics, this)
    }
  }

  /** Joins the network through the bootstrap nodes. Rejects with BootstrapError when none can be reached. */
  async start (signal?: AbortSignal): Promise<void> {
    this.status = 'starting'
    this.detachEvents = relayPeerEvents(this, this.components.libp2p, this.services)
    try {
      await start(...startables(this.services))
      await this.services.bootstrap.join(signal)
    } catch (err) {
      await this.stop()
      throw err
    }
    this.status = 'started'
    this.announcing = new AbortController()
    void this.services.capacity.announce(this.services.contributor.advert(), AbortSignal.any([this.announcing.signal, AbortSignal.timeout(ANNOUNCE_TIMEOUT_MS)]))
  }

  async stop (): Promise<void> {
    if (this.status === 'stopped' || this.status === 'stopping') {
      return
    }
    this.status = 'stopping'
    this.announcing?.abort()
    this.detachEvents?.()
    await stop(...startables(this.services))
    await this.components.shutdown()
    this.status = 'stopped'
  }

  /**
   * libp2p's metrics and ours (jobs served and requested, slots, storage) in
   * Prometheus text, when the peer collects them (Node: `createPeer({ metrics: true })`).
   */
  async metrics (): Promise<string | undefined> {
    return this.components.metricsText?.()
  }

  /** Peers advertising capacity, newest advert first. */
  peers (): PeerCapacity[] {
    return this.services.capacity.peers()
  }

  /** This peer's record of the workers it has used: scores and bans, persisted across restarts. */
  workers (): Array<{ peerId: string, record: PeerRecord, score: number }> {
    return this.services.reputation.all()
  }

  /** The signed receipts that got a worker banned: proof anyone can verify. */
  async evidence (peerId: string, signal?: AbortSignal): Promise<Evidence[]> {
    return this.services.reputation.evidence(peerId, signal)
  }

  /** Addresses others can dial us at. */
  addresses (): string[] {
    return this.components.libp2p.getMultiaddrs().map(ma => ma.toString())
  }

  /** Our live connections and how each is carried. */
  connections (): PeerConnection[] {
    return describeConnections(this.components.libp2p)
  }

  /** Our contribution, or undefined when we do not contribute. */
  get contribution (): Contribution | undefined {
    return this.services.contributor.contribution
  }

  /** The advert we publish while contributing. */
  localAdvert (): AdvertContent | undefined {
    return this.contribution == null ? undefined : this.services.contributor.advert()
  }

  /**
   * Starts running jobs for others with `threads` slots, and advertises them.
   * Call it only when the user agreed. Calling it again changes the thread count.
   */
  async contribute (options: ContributeOptions = {}): Promise<void> {
    await this.services.contributor.contribute(options)
  }

  /**
   * Offers `bytes` of storage for others' content (see `store`), with or
   * without `contribute`, and advertises it; 0 withdraws the offer (what is
   * pinned stays until it expires). Call it only when the user agreed.
   */
  offerStorage (bytes: number): void {
    this.services.contributor.offerStorage(bytes)
  }

  /** Stops taking new jobs and tells peers. Jobs already running are stopped. */
  async stopContributing (): Promise<void> {
    await this.services.contributor.stop()
  }

  /** Stores content in our Helia node and returns its CID, so jobs can name it. */
  async add (bytes: Uint8Array, signal?: AbortSignal): Promise<CID> {
    return this.components.content.add(bytes, signal)
  }

  /** Stores a directory tree (or one file) as UnixFS and returns its CID, so jobs can mount it. */
  async addTree (tree: TreeEntry, signal?: AbortSignal): Promise<CID> {
    return this.components.content.addTree(tree, signal)
  }

  /**
   * Runs one job on the network and resolves with its verified output.
   * Rejects with the job's own failure (TimeLimitError, WasmTrapError,
   * NonZeroExitError…, carrying the signed `receipt`), or with
   * JobFailedError when no worker could run it. A lone run goes alone;
   * many runs of a tiny module in flight at once travel in chunks, as a
   * map's jobs do, each verified as any job.
   */
  async run (options: RunOptions): Promise<RunResult> {
    const signal = options.signal ?? new AbortController().signal
    setMaxListeners(Infinity, signal) // every attempt and wait listens on it
    const { jobs, runs } = this.services
    await this.fetchStored([options.module, options.input], signal)
    const job = await jobs.job(await jobs.module(options.module, signal), options.input, options, signal)
    return runs.run(job, { signal, resume: options.resume === true })
  }

  /**
   * Runs the module once per input, `concurrency` jobs at a time, and yields
   * results as they arrive. A failed job yields `{ ok: false, error }` and the
   * batch goes on. Once a module is seen to run in a millisecond or two, its
   * jobs travel in chunks (see job/chunker.ts), verified as any job.
   */
  async * map (module: ModuleRef, inputs: Iterable<InputRef> | AsyncIterable<InputRef>, options: MapOptions = {}): AsyncGenerator<MapResult> {
    const signal = options.signal ?? new AbortController().signal
    const { jobs, requester } = this.services
    const moduleCid = await jobs.module(module, signal)
    const concurrency = options.concurrency ?? MAP_CONCURRENCY
    const chunker = new Chunker(requester, signal)
    const resume = options.resume === true
    const pending = async function * (): AsyncGenerator<PendingJob> {
      for await (const input of inputs) {
        yield async () => chunker.run(await jobs.job(moduleCid, input, options, signal), { resume })
      }
    }
    yield * runMany(pending(), concurrency, signal, requester)
  }

  /**
   * Like `map`, but the batch survives restarts: its jobs are stored (in the
   * data dir on Node, IndexedDB in browsers) before any runs, and results as
   * they are accepted. After a restart or a page reload, `resume(id)` runs
   * what is left; finished jobs are not run again. Results are yielded as in
   * `map`, for every job of the batch, finished ones included.
   */
  async * batch (id: string, module: ModuleRef, inputs: Iterable<InputRef> | AsyncIterable<InputRef>, options: MapOptions = {}): AsyncGenerator<MapResult> {
    yield * this.services.batches.start(id, module, inputs, options, options.concurrency ?? MAP_CONCURRENCY, options.signal ?? new AbortController().signal)
  }

  /** Runs what is left of a stored batch (see `batch`). Rejects with BatchNotFoundError if no batch has that id. */
  async * resume (id: string, options: Pick<MapOptions, 'concurrency' | 'signal'> = {}): AsyncGenerator<MapResult> {
    yield * this.services.batches.resume(id, options.concurrency ?? MAP_CONCURRENCY, options.signal ?? new AbortController().signal)
  }

  /**
   * Keeps content on `replicas` distinct storage peers (chosen from adverts
   * by free space, record and host), each of which fetches it by CID, checks
   * every block, and returns a signed storage receipt. The holders know each
   * other and keep the count at `replicas` between them, checking each other
   * at random times, after we go offline too, until `ttl` runs out (renew
   * with `renew`). Pass bytes (stored as a UnixFS file) or the CID of
   * content we have (`add`, `addTree`) or can fetch.
   *
   * Rejects with StorageFullError when every peer asked refused for lack of
   * room, NotEnoughHoldersError when none accepted.
   */
  async store (content: Uint8Array | CID | string, options: StoreOptions = {}): Promise<StoreResult> {
    return this.services.storage.store(content, options)
  }

  /** Fetches stored content by CID from whichever holder has it, every block checked against the CID; ContentFetchError if it does not arrive in time. */
  async get (cid: CID | string, options: HoldersOptions & { maxBytes?: number } = {}): Promise<Uint8Array> {
    return this.services.storage.get(cid, options)
  }

  /** Fetches stored content as the file, folder or symlink it is (a stored folder comes back as a tree), every block checked against its CID. */
  async getEntry (cid: CID | string, options: HoldersOptions & { maxBytes?: number } = {}): Promise<TreeEntry> {
    return this.services.storage.getEntry(cid, options)
  }

  /** The storage peers holding the CID now, each with its verified, unexpired storage receipt. */
  async holders (cid: CID | string, options: HoldersOptions = {}): Promise<Holding[]> {
    return this.services.storage.holders(cid, options)
  }

  /** Extends a pin to `ttl` ms from now on its holders; we must be its owner or one of the renewers it named. */
  async renew (cid: CID | string, options: HoldersOptions & { ttl?: number } = {}): Promise<Holding[]> {
    return this.services.storage.renew(cid, options)
  }

  /** What we hold for others: offer, use, pins, checks made and answered. */
  storageStats (): StorageStats {
    return this.services.holder.storageStats()
  }

  /** The failed storage checks we saw of a holder. */
  async storageEvidence (peerId: string, signal?: AbortSignal): Promise<StorageEvidence[]> {
    return this.services.reputation.storageEvidence(peerId, signal)
  }

  /** Module and input given by CID and not here: fetched from their holders first, so the workers we pick can fetch them from us. */
  private async fetchStored (refs: Array<ModuleRef | InputRef | undefined>, signal: AbortSignal): Promise<void> {
    for (const ref of refs) {
      const cid = ref instanceof Uint8Array || ref == null || ref instanceof URL ? undefined : CID.asCID(ref) ?? parseCid(ref as string)
      if (cid != null) {
        await this.services.storage.fetchToLocal(cid, signal).catch(() => {
          // not stored anywhere we can find: the workers may still have it, and say so if not
        })
      }
    }
  }

  /** Stored batches, oldest first, with how many of their jobs have an accepted result. */
  async listBatches (signal?: AbortSignal): Promise<BatchSummary[]> {
    return this.services.batches.list(signal)
  }

  /** Forgets a stored batch (its accepted results stay in the result store). */
  async deleteBatch (id: string, signal?: AbortSignal): Promise<void> {
    await this.services.batches.delete(id, signal)
  }

  /**
   * Publishes a function under `<our peer id>/<name>`: a manifest signed with
   * our key (module CID, ABI, limits, fixed environment), newer than any
   * version known. Resolves once `replicas` workers hold the module and have
   * it compiled, so the function runs while we are offline.
   */
  async deploy (options: DeployOptions): Promise<Deployment> {
    return this.services.calls.deploy(options)
  }

  /**
   * Calls a function by address (`<owner>/<name>`) and resolves with its
   * HTTP-style response and the worker's signed receipt, checked like any
   * job's. Rejects with FunctionNotFoundError, the module's own failure
   * (carrying the receipt), FunctionResponseError for a WAGI module whose
   * output is no CGI response, or NoWorkersError.
   */
  async call (address: string, request: FunctionRequest = {}, options: CallOptions = {}): Promise<CallResult> {
    return this.services.calls.call(address, request, options)
  }

  /**
   * Takes a signed manifest received out of band (e.g. from a file) and
   * spreads it. Rejects with InvalidManifestError one not signed by the
   * owner its address names, or not newer than the version known.
   */
  async addManifest (signed: SignedManifest, signal?: AbortSignal): Promise<KnownFunction> {
    return this.services.functions.publish(signed, signal)
  }

  /** The functions this peer knows, newest deployment first. */
  functions (): KnownFunction[] {
    return this.services.functions.list()
  }
}

function parseCid (text: string): CID | undefined {
  try {
    return CID.parse(text)
  } catch {
    return undefined
  }
}
