import { KEEP_ALIVE, type Libp2p, type PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { setMaxListeners, TypedEventEmitter } from 'main-event'
import { CID } from 'multiformats/cid'
import { fromString as stringToBytes } from 'uint8arrays/from-string'
import { CapacityService, type AdvertContent, type PeerCapacity } from './capacity.ts'
import { DEFAULT_LIMITS, MAX_ADVERTISED_ADDRS, MAX_ADVERTISED_MODULES, MAX_INLINE_BYTES, SOFTWARE_VERSION } from './constants.ts'
import { BootstrapError, InvalidModuleError, JobFailedError, WorkerLostError } from './errors.ts'
import { ABIS, type Abi, type Executor, type ResourceLimits } from './executor.ts'
import { JobClient } from './job-client.ts'
import { JobServer, type ServedJob, type TestFault } from './job-server.ts'
import { encodeJob, type EncodedJob } from './job.ts'
import { BatchStore } from './batches.ts'
import { Reputation, type Evidence, type PeerRecord } from './reputation.ts'
import type { Signer } from './receipt.ts'
import { Requester, type JobEvent, type RequesterInit, type RunResult } from './requester.ts'
import { ResultStore } from './results.ts'
import { Scheduler } from './scheduler.ts'
import type { CapacityAdvert } from './advert.ts'
import type { ContentStore } from './content.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Datastore } from 'interface-datastore'

export type { JobEvent, RunResult } from './requester.ts'

export type PeerStatus = 'starting' | 'started' | 'stopping' | 'stopped'

/** A Wasm module: its bytes, its CID (object or string), or a URL to fetch it from. */
export type ModuleRef = Uint8Array | CID | URL | string

/** A job input: bytes, text (sent as UTF-8), or the CID of content on the network. */
export type InputRef = Uint8Array | string | CID

export interface RunOptions {
  module: ModuleRef
  input?: InputRef
  /** @default 'wasi' */
  abi?: Abi
  /** Arguments after argv[0] (wasi). */
  args?: string[]
  env?: Record<string, string>
  /** Unset fields take DEFAULT_LIMITS. */
  limits?: Partial<ResourceLimits>
  /**
   * How many distinct workers run the job; the output is accepted once a
   * majority of them return the same output hash.
   * @default 1
   */
  redundancy?: number
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
  /** Jobs in flight at once. @default 64 */
  concurrency?: number
}

/** One result of `map`, in completion order; `index` is the input's position. */
export type MapResult =
  | { index: number, ok: true, result: RunResult }
  | { index: number, ok: false, error: Error }

export interface ContributeOptions {
  /** Jobs to run at once. @default 1 */
  threads?: number
}

export interface PeerEvents {
  /** The set of peers we know capacity for changed: read `peer.peers()`. */
  'peers': CustomEvent<PeerCapacity[]>
  /** Connected peers changed: `detail` is how many; read `peer.connections()` for the links. */
  'connections': CustomEvent<number>
  /** Our own dialable addresses changed: `detail` is `peer.addresses()`. */
  'addresses': CustomEvent<string[]>
  /** We published our capacity advert (on contributing, on load changes, and every interval). */
  'advert': CustomEvent<CapacityAdvert>
  /** Our contribution started, stopped or changed load: read `peer.contribution`. */
  'contribution': CustomEvent<Contribution | undefined>
  'job:queued': CustomEvent<JobEvent>
  'job:running': CustomEvent<JobEvent>
  'job:retry': CustomEvent<JobEvent>
  'job:done': CustomEvent<JobEvent>
  'job:failed': CustomEvent<JobEvent>
  /** A job we run for someone else started or ended. */
  'work:start': CustomEvent<ServedJob>
  'work:end': CustomEvent<ServedJob>
}

/** How a connection to another peer is carried. */
export type ConnectionTransport = 'webrtc' | 'relay' | 'websockets' | 'tcp' | 'other'

/** A live connection to another peer, as `peer.connections()` reports it. */
export interface PeerConnection {
  peerId: string
  remoteAddr: string
  transport: ConnectionTransport
  /** False for a relayed connection: its bytes pass through a relay node. */
  direct: boolean
}

export interface Contribution {
  threads: number
  running: number
}

export type PeerServices = {
  pubsub: GossipSub
}

/** What the composition roots (node/, web/) plug in. */
export interface PeerComponents {
  libp2p: Libp2p<PeerServices>
  /** Signs our receipts: the peer's private key, or a faster signer for the same key. */
  signer: Signer
  content: ContentStore
  /** Where reputation and accepted results persist (Helia's datastore). */
  datastore: Datastore
  createExecutor: (slots: number) => Executor
  platform: CapacityAdvert['platform']
  /** Stops everything the composition root started (Helia, libp2p, stores). */
  shutdown: () => Promise<void>
}

export interface PeerInit extends RequesterInit {
  /** Multiaddrs of bootstrap nodes to join through. Empty: a lone peer that others dial. */
  bootstrap: readonly string[]
  /** How often adverts are re-published. */
  advertIntervalMs?: number
  /** The largest per-job memory limit we accept as a worker. @default 1 GiB */
  maxJobMemoryBytes?: number
  /** Storage we advertise, in bytes. @default 0 */
  storageBytes?: number
  /** Test aid: misbehave as a worker (see TestFault). */
  fault?: TestFault
}

/**
 * A wasmesh peer: requester, and worker when asked to contribute. Create one
 * with `createPeer` from the package entry for your platform.
 */
export class Peer extends TypedEventEmitter<PeerEvents> {
  /** This peer's id: the libp2p peer id whose key signs its receipts. */
  readonly id: string
  status: PeerStatus = 'stopped'

  private readonly components: PeerComponents
  private readonly init: PeerInit
  private readonly capacity: CapacityService
  private readonly client: JobClient
  private readonly reputation: Reputation
  private readonly requester: Requester
  private readonly results: ResultStore
  private readonly batches: BatchStore
  private worker?: { server: JobServer, executor: Executor }
  private announcing?: AbortController

  constructor (components: PeerComponents, init: PeerInit) {
    super()
    this.components = components
    this.init = init
    this.id = components.libp2p.peerId.toString()
    this.capacity = new CapacityService({ pubsub: components.libp2p.services.pubsub, peerId: components.libp2p.peerId }, { intervalMs: init.advertIntervalMs })
    this.client = new JobClient({
      openStream: async (peerId, protocol, signal) => {
        const id = peerIdFromString(peerId)
        await this.rememberAddresses(id)
        return components.libp2p.dialProtocol(id, protocol, { signal })
      }
    })
    this.reputation = new Reputation(components.datastore)
    this.results = new ResultStore(components.datastore, components.content)
    this.batches = new BatchStore(components.datastore)
    this.requester = new Requester({
      capacity: this.capacity,
      client: this.client,
      content: components.content,
      scheduler: new Scheduler(this.reputation),
      reputation: this.reputation,
      results: this.results,
      selfId: this.id,
      emit: (type, detail) => { this.safeDispatch(type, { detail }) }
    }, init)
  }

  /** Joins the network through the bootstrap nodes. Rejects with BootstrapError when none can be reached. */
  async start (signal?: AbortSignal): Promise<void> {
    this.status = 'starting'
    const { libp2p } = this.components
    this.capacity.addEventListener('change', this.onCapacityChange)
    this.capacity.addEventListener('published', this.onPublished)
    libp2p.addEventListener('self:peer:update', this.onAddressesChange)
    libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    libp2p.addEventListener('connection:open', this.onConnectionsChange)
    libp2p.addEventListener('connection:close', this.onConnectionsChange)
    this.capacity.start()
    try {
      await this.reputation.load(signal)
      await this.joinBootstrap(signal)
    } catch (err) {
      await this.stop()
      throw err
    }
    this.status = 'started'
    const announcing = new AbortController()
    this.announcing = announcing
    void this.capacity.announce(this.advertFor(undefined), AbortSignal.any([announcing.signal, AbortSignal.timeout(10_000)]))
  }

  async stop (): Promise<void> {
    if (this.status === 'stopped' || this.status === 'stopping') {
      return
    }
    this.status = 'stopping'
    this.announcing?.abort()
    const { libp2p } = this.components
    libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    libp2p.removeEventListener('connection:open', this.onConnectionsChange)
    libp2p.removeEventListener('connection:close', this.onConnectionsChange)
    this.capacity.removeEventListener('change', this.onCapacityChange)
    this.capacity.removeEventListener('published', this.onPublished)
    libp2p.removeEventListener('self:peer:update', this.onAddressesChange)
    await this.stopContributing()
    this.client.stop()
    this.capacity.stop()
    await this.reputation.stop()
    await this.components.shutdown()
    this.status = 'stopped'
  }

  /** Peers advertising capacity, newest advert first. */
  peers (): PeerCapacity[] {
    return this.capacity.peers()
  }

  /** This peer's record of the workers it has used: scores and bans, persisted across restarts. */
  workers (): Array<{ peerId: string, record: PeerRecord, score: number }> {
    return this.reputation.all()
  }

  /** The signed receipts that got a worker banned: proof anyone can verify. */
  async evidence (peerId: string, signal?: AbortSignal): Promise<Evidence[]> {
    return this.reputation.evidence(peerId, signal)
  }

  /** Addresses others can dial us at. */
  addresses (): string[] {
    return this.components.libp2p.getMultiaddrs().map(ma => ma.toString())
  }

  /** Our live connections and how each is carried. */
  connections (): PeerConnection[] {
    return this.components.libp2p.getConnections().map(connection => {
      const remoteAddr = connection.remoteAddr.toString()
      const transport = transportOf(remoteAddr)
      return { peerId: connection.remotePeer.toString(), remoteAddr, transport, direct: transport !== 'relay' }
    })
  }

  /** Our contribution, or undefined when we do not contribute. */
  get contribution (): Contribution | undefined {
    if (this.worker == null) {
      return undefined
    }
    const { server } = this.worker
    return { threads: server.totalSlots, running: server.totalSlots - server.freeSlots }
  }

  /** The advert we publish while contributing. */
  localAdvert (): AdvertContent | undefined {
    return this.worker == null ? undefined : this.advertFor(this.worker)
  }

  /**
   * Starts running jobs for others with `threads` slots, and advertises them.
   * Call it only when the user agreed. Calling it again changes the thread count.
   */
  async contribute (options: ContributeOptions = {}): Promise<void> {
    const threads = Math.max(1, Math.floor(options.threads ?? 1))
    if (this.worker?.server.totalSlots === threads) {
      return
    }
    await this.stopContributing()
    const { libp2p, signer, content } = this.components
    const executor = this.components.createExecutor(threads)
    await executor.start()
    const server = new JobServer({ registrar: libp2p, signer, peerId: libp2p.peerId, executor, content }, { slots: threads, fault: this.init.fault })
    server.addEventListener('slots', this.onSlotsChange)
    server.addEventListener('job:start', this.onWorkStart)
    server.addEventListener('job:end', this.onWorkEnd)
    await server.start()
    this.worker = { server, executor }
    this.capacity.setLocal(() => this.localAdvert())
    this.safeDispatch('contribution', { detail: this.contribution })
  }

  /** Stops taking new jobs and tells peers. Jobs already running are stopped. */
  async stopContributing (): Promise<void> {
    const worker = this.worker
    if (worker == null) {
      return
    }
    this.worker = undefined
    const withdrawn = { ...this.advertFor(worker), slots: { total: 0, free: 0 } }
    this.capacity.setLocal(() => withdrawn)
    worker.server.removeEventListener('slots', this.onSlotsChange)
    worker.server.removeEventListener('job:start', this.onWorkStart)
    worker.server.removeEventListener('job:end', this.onWorkEnd)
    await worker.server.stop()
    await worker.executor.stop()
    this.safeDispatch('contribution', { detail: undefined })
  }

  /** Stores content in our Helia node and returns its CID, so jobs can name it. */
  async add (bytes: Uint8Array, signal?: AbortSignal): Promise<CID> {
    return this.components.content.add(bytes, signal)
  }

  /**
   * Runs one job on the network and resolves with its verified output.
   * Rejects with the job's own failure (TimeLimitError, WasmTrapError,
   * NonZeroExitError…, carrying the signed `receipt`), or with
   * JobFailedError when no worker could run it.
   */
  async run (options: RunOptions): Promise<RunResult> {
    const signal = options.signal ?? new AbortController().signal
    setMaxListeners(Infinity, signal) // every attempt and wait listens on it
    const module = await this.resolveModule(options.module, signal)
    const job = await this.prepareJob(module, options.input, options, signal)
    return this.requester.execute(job, { signal, resume: options.resume === true })
  }

  /**
   * Runs the module once per input, `concurrency` jobs at a time, and yields
   * results as they arrive. A failed job yields `{ ok: false, error }` and the
   * batch goes on.
   */
  async * map (module: ModuleRef, inputs: Iterable<InputRef> | AsyncIterable<InputRef>, options: MapOptions = {}): AsyncGenerator<MapResult> {
    const signal = options.signal ?? new AbortController().signal
    const moduleCid = await this.resolveModule(module, signal)
    const prepare = async function * (peer: Peer): AsyncGenerator<() => Promise<EncodedJob>> {
      for await (const input of inputs) {
        yield async () => peer.prepareJob(moduleCid, input, options, signal)
      }
    }
    yield * this.runJobs(prepare(this), { ...options, signal })
  }

  /**
   * Like `map`, but the batch survives restarts: its jobs are stored (in the
   * data dir on Node, IndexedDB in browsers) before any runs, and results as
   * they are accepted. After a restart or a page reload, `resume(id)` runs
   * what is left; finished jobs are not run again. Results are yielded as in
   * `map`, for every job of the batch, finished ones included.
   */
  async * batch (id: string, module: ModuleRef, inputs: Iterable<InputRef> | AsyncIterable<InputRef>, options: MapOptions = {}): AsyncGenerator<MapResult> {
    const signal = options.signal ?? new AbortController().signal
    const moduleCid = await this.resolveModule(module, signal)
    const jobs: EncodedJob[] = []
    for await (const input of inputs) {
      jobs.push(await this.prepareJob(moduleCid, input, options, signal))
    }
    await this.batches.save(id, jobs, signal)
    yield * this.runJobs(jobs.map(job => async () => job), { ...options, resume: true, signal })
  }

  /** Runs what is left of a stored batch (see `batch`). Rejects if no batch has that id. */
  async * resume (id: string, options: Pick<MapOptions, 'concurrency' | 'signal'> = {}): AsyncGenerator<MapResult> {
    const record = await this.batches.get(id, options.signal)
    if (record == null) {
      throw new JobFailedError(`no stored batch is named "${id}"`, [])
    }
    const jobs = await this.batches.jobs(record, options.signal)
    yield * this.runJobs(jobs.map(job => async () => job), { ...options, resume: true, signal: options.signal ?? new AbortController().signal })
  }

  /** Stored batches, oldest first, with how many of their jobs have an accepted result. */
  async listBatches (signal?: AbortSignal): Promise<Array<{ id: string, total: number, done: number, createdAt: number }>> {
    const records = await this.batches.list(signal)
    return Promise.all(records.map(async record => {
      const finished = await Promise.all(record.jobs.map(async cid => this.results.has(cid, signal)))
      return { id: record.id, total: record.jobs.length, done: finished.filter(Boolean).length, createdAt: record.createdAt }
    }))
  }

  /** Forgets a stored batch (its accepted results stay in the result store). */
  async deleteBatch (id: string, signal?: AbortSignal): Promise<void> {
    await this.batches.delete(id, signal)
  }

  /** Runs jobs `concurrency` at a time and yields results in completion order. */
  private async * runJobs (jobs: Iterable<() => Promise<EncodedJob>> | AsyncIterable<() => Promise<EncodedJob>>, options: MapOptions & { signal: AbortSignal }): AsyncGenerator<MapResult> {
    const { signal } = options
    setMaxListeners(Infinity, signal) // every job in flight listens on it
    const concurrency = Math.max(1, options.concurrency ?? 64)
    const done: MapResult[] = []
    let wake: (() => void) | undefined
    let running = 0
    let index = 0
    const settle = (result: MapResult): void => {
      running--
      done.push(result)
      wake?.()
    }
    const iterator = (Symbol.asyncIterator in jobs ? jobs[Symbol.asyncIterator]() : jobs[Symbol.iterator]()) as AsyncIterator<() => Promise<EncodedJob>> | Iterator<() => Promise<EncodedJob>>
    let exhausted = false
    while (!exhausted || running > 0 || done.length > 0) {
      while (!exhausted && running < concurrency) {
        const next = await iterator.next()
        if (next.done === true) {
          exhausted = true
          break
        }
        const i = index++
        running++
        next.value()
          .then(async job => this.requester.execute(job, { signal, resume: options.resume === true }))
          .then(result => { settle({ index: i, ok: true, result }) }, (error: Error) => { settle({ index: i, ok: false, error }) })
      }
      const result = done.shift()
      if (result != null) {
        yield result
        continue
      }
      if (running > 0) {
        await new Promise<void>(resolve => { wake = resolve })
        wake = undefined
      }
    }
  }

  /** Our advert with a given worker, or a zero-slot one without. */
  private advertFor (worker: { server: JobServer, executor: Executor } | undefined): AdvertContent {
    return {
      v: 1,
      slots: { total: worker?.server.totalSlots ?? 0, free: worker?.server.freeSlots ?? 0 },
      memoryBytes: this.init.maxJobMemoryBytes ?? 1024 * 1024 * 1024,
      storageBytes: this.init.storageBytes ?? 0,
      abis: [...ABIS],
      cached: (worker?.executor.cachedModules() ?? []).slice(0, MAX_ADVERTISED_MODULES).map(cid => CID.parse(cid)),
      addrs: this.components.libp2p.getMultiaddrs().slice(0, MAX_ADVERTISED_ADDRS).map(ma => ma.bytes),
      version: SOFTWARE_VERSION,
      platform: this.components.platform
    }
  }

  private async resolveModule (module: ModuleRef, signal: AbortSignal): Promise<CID> {
    if (module instanceof Uint8Array) {
      return this.components.content.add(module, signal)
    }
    const cid = CID.asCID(module)
    if (cid != null) {
      return cid
    }
    if (module instanceof URL || /^(https?|data|blob|file):/.test(module as string)) {
      const url = module instanceof URL ? module : new URL(module as string)
      let response: Response
      try {
        response = await fetch(url, { signal })
      } catch (err) {
        throw new InvalidModuleError(`could not download the module from ${url.href}: ${(err as Error).message}`, { cause: err })
      }
      if (!response.ok) {
        throw new InvalidModuleError(`could not download the module from ${url.href}: HTTP ${response.status}`)
      }
      return this.components.content.add(new Uint8Array(await response.arrayBuffer()), signal)
    }
    try {
      return CID.parse(module as string)
    } catch {
      throw new InvalidModuleError(`"${String(module)}" is neither a CID nor a URL; pass the module's bytes, its CID or a URL`)
    }
  }

  private async prepareJob (module: CID, input: InputRef | undefined, options: Omit<RunOptions, 'module' | 'input'>, signal: AbortSignal): Promise<EncodedJob> {
    let inputRef: Uint8Array | CID = typeof input === 'string' ? stringToBytes(input) : (input ?? new Uint8Array(0))
    if (inputRef instanceof Uint8Array && inputRef.byteLength > MAX_INLINE_BYTES) {
      inputRef = await this.components.content.add(inputRef, signal)
    }
    return encodeJob({
      v: 1,
      module,
      abi: options.abi ?? 'wasi',
      args: options.args ?? [],
      env: options.env ?? {},
      input: inputRef,
      limits: { ...DEFAULT_LIMITS, ...options.limits },
      redundancy: options.redundancy ?? 1
    })
  }

  private async joinBootstrap (signal?: AbortSignal): Promise<void> {
    const { libp2p } = this.components
    if (this.init.bootstrap.length === 0) {
      return
    }
    const failures: string[] = []
    await Promise.all(this.init.bootstrap.map(async addr => {
      try {
        const ma = multiaddr(addr)
        const connection = await libp2p.dial(ma, { signal: AbortSignal.any([AbortSignal.timeout(10_000), ...(signal != null ? [signal] : [])]) })
        // keep-alive: libp2p redials a lost bootstrap node by itself
        await libp2p.peerStore.merge(connection.remotePeer, { multiaddrs: [ma], tags: { [KEEP_ALIVE]: { value: 1 } } })
      } catch (err) {
        failures.push(`${addr}: ${(err as Error).message}`)
      }
    }))
    if (failures.length === this.init.bootstrap.length) {
      throw new BootstrapError(`could not reach any bootstrap node (${failures.join('; ')}). Check the address, or start a local network with \`npm start\`.`)
    }
  }

  private async rememberAddresses (peerId: PeerId): Promise<void> {
    const entry = this.capacity.get(peerId.toString())
    if (entry != null && entry.advert.addrs.length > 0) {
      await this.components.libp2p.peerStore.merge(peerId, { multiaddrs: entry.advert.addrs.map(bytes => multiaddr(bytes)) })
    }
  }

  private safeDispatch<K extends keyof PeerEvents>(type: K, init: { detail: PeerEvents[K] extends CustomEvent<infer D> ? D : never }): void {
    try {
      this.dispatchEvent(new CustomEvent(type, init))
    } catch {
      // a listener threw: that is the app's bug, and must not break the job pipeline
    }
  }

  private readonly onCapacityChange = (): void => {
    this.safeDispatch('peers', { detail: this.capacity.peers() })
    this.requester.wake()
  }

  private readonly onPublished = (event: Event): void => {
    this.safeDispatch('advert', { detail: (event as CustomEvent<CapacityAdvert>).detail })
  }

  private readonly onAddressesChange = (): void => {
    this.safeDispatch('addresses', { detail: this.addresses() })
  }

  private readonly onDisconnect = (event: CustomEvent<PeerId>): void => {
    const peerId = event.detail.toString()
    this.client.drop(peerId, new WorkerLostError(`${peerId} disconnected`))
    this.capacity.forget(peerId)
  }

  private readonly onConnectionsChange = (): void => {
    this.safeDispatch('connections', { detail: this.components.libp2p.getConnections().length })
  }

  private readonly onSlotsChange = (): void => {
    this.capacity.publishSoon()
    this.safeDispatch('contribution', { detail: this.contribution })
  }

  private readonly onWorkStart = (event: Event): void => {
    this.safeDispatch('work:start', { detail: (event as CustomEvent<ServedJob>).detail })
  }

  private readonly onWorkEnd = (event: Event): void => {
    this.safeDispatch('work:end', { detail: (event as CustomEvent<ServedJob>).detail })
  }
}

/** A relayed WebRTC connection is direct once upgraded; a bare circuit address is relayed. */
function transportOf (remoteAddr: string): ConnectionTransport {
  if (remoteAddr.includes('/webrtc')) {
    return 'webrtc'
  }
  if (remoteAddr.includes('/p2p-circuit')) {
    return 'relay'
  }
  if (/\/wss?(\/|$)/.test(remoteAddr)) {
    return 'websockets'
  }
  return remoteAddr.includes('/tcp/') ? 'tcp' : 'other'
}
