import { setMaxListeners } from 'main-event'
import { DEFAULT_LIMITS, DEPLOY_REPLICAS, DEPLOY_STORE_REPLICAS } from '../constants.ts'
import { FunctionNotFoundError, MalformedMessageError, type WasmeshError } from '../errors.ts'
import { FUNCTION_NAME, functionAddress, parseFunctionAddress, signManifest, type FunctionAbi, type FunctionManifest, type SignedManifest } from '../wire/function.ts'
import { parseWagiOutput, requestBody, wagiEnv, type FunctionRequest, type FunctionResponse } from './wagi.ts'
import type { FunctionRegistry } from './registry.ts'
import type { Requester, RunResult } from '../job/requester.ts'
import type { JobBuilder, ModuleRef } from '../job/submit.ts'
import type { ResourceLimits } from '../runtime/executor.ts'
import type { Signer, VerifiedReceipt } from '../wire/receipt.ts'
import type { CapacityService } from '../net/capacity.ts'
import type { StorageClient } from '../storage/client.ts'
import { advertisedFree } from '../storage/placement.ts'
import type { CID } from 'multiformats/cid'

export interface DeployOptions {
  /** The function's name: its address is `<our peer id>/<name>`. */
  name: string
  module: ModuleRef
  /** @default 'wagi' */
  abi?: FunctionAbi
  /** Every call's limits; unset fields take DEFAULT_LIMITS. */
  limits?: Partial<ResourceLimits>
  /** Environment every call gets. */
  env?: Record<string, string>
  /**
   * Workers that must hold the module (and have it compiled) before deploy
   * returns, so the function runs while we are offline. 0 publishes the
   * manifest only. @default DEPLOY_REPLICAS
   */
  replicas?: number
  /**
   * Storage peers that must pin the module (`peer.store`), so it outlives the
   * workers that ran it too. Default: up to DEPLOY_STORE_REPLICAS of the
   * storage peers with room for it; none when no peer offers storage. 0 skips.
   */
  storeReplicas?: number
  signal?: AbortSignal
}

export interface Deployment {
  /** `<owner peer id>/<name>`. */
  address: string
  manifest: FunctionManifest
  signed: SignedManifest
  /** Peer ids of the workers that hold the module now. */
  holders: string[]
  /** Peer ids of the storage peers that pinned the module, with signed storage receipts. */
  stored: string[]
  /** Neighbours that confirmed they hold the manifest (0: it stayed here; no peer was reachable in time). */
  reached: number
}

export interface CallOptions {
  /** Distinct workers that run the call; the response is the one a majority agrees on. @default 1 */
  redundancy?: number
  signal?: AbortSignal
}

/** A function's response, with the proof of who computed it. */
export interface CallResult extends FunctionResponse {
  address: string
  /** The manifest version that was called. */
  version: number
  /** The job spec's CID: what the receipt is for. */
  job: CID
  worker: string
  /** The accepted receipt, signed by `worker`: `encodeSignedReceipt(receipt.signed)` travels in the gateway's headers. */
  receipt: VerifiedReceipt
  durationMs: number
}

export interface FunctionsComponents {
  /** Our peer id: the owner of what we deploy. */
  peerId: string
  signer: Signer
  registry: FunctionRegistry
  jobs: JobBuilder
  requester: Pick<Requester, 'execute'>
  storage: Pick<StorageClient, 'store'>
  capacity: Pick<CapacityService, 'peers'>
}

/**
 * Deploying and calling functions: a call is a job (the same requester,
 * verification and redundancy as `peer.run`) whose module, ABI, limits and
 * environment come from the function's signed manifest.
 */
export class Functions {
  private readonly components: FunctionsComponents

  constructor (components: FunctionsComponents) {
    this.components = components
  }

  async deploy (options: DeployOptions): Promise<Deployment> {
    const signal = options.signal ?? new AbortController().signal
    setMaxListeners(Infinity, signal) // every attempt and wait of the warm-up job listens on it
    if (!FUNCTION_NAME.test(options.name)) {
      throw new MalformedMessageError(`"${options.name}" is not a function name: 1 to 64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit`)
    }
    const { registry, jobs, peerId, signer } = this.components
    const module = await jobs.module(options.module, signal)
    const address = `${peerId}/${options.name}`
    // a fresh peer learns the versions its neighbours hold before it picks the next
    await registry.synced()
    const current = registry.get(address)?.manifest.version ?? 0
    const manifest: FunctionManifest = {
      v: 1,
      owner: peerId,
      name: options.name,
      // the clock keeps versions increasing even from a fresh data dir; +1 when the clock is behind
      version: Math.max(Date.now(), current + 1),
      module,
      abi: options.abi ?? 'wagi',
      limits: { ...DEFAULT_LIMITS, ...options.limits },
      env: options.env ?? {},
      timestamp: Date.now()
    }
    const signed = await signManifest(manifest, signer)
    const holders = await this.hold(manifest, options.replicas ?? DEPLOY_REPLICAS, signal)
    const stored = await this.pin(module, options.storeReplicas, signal)
    await registry.accept(signed)
    const reached = await registry.spread(signed, signal)
    return { address, manifest, signed, holders, stored, reached }
  }

  /**
   * Runs the function once on `replicas` distinct workers: each fetches the
   * module into its blockstore and keeps it compiled, so it is held and warm
   * (no cold start on the first call). A module failure on that first call
   * still leaves it held.
   */
  private async hold (manifest: FunctionManifest, replicas: number, signal: AbortSignal): Promise<string[]> {
    if (replicas === 0) {
      return []
    }
    const address = functionAddress(manifest)
    const request: FunctionRequest = { method: 'GET', path: '/', headers: { 'user-agent': 'wasmesh-deploy' } }
    try {
      const result = await this.execute(manifest, request, { redundancy: replicas, signal })
      return result.receipts.map(verified => verified.receipt.worker)
    } catch (err) {
      const receipt = (err as WasmeshError).receipt
      if (receipt != null) {
        return [receipt.worker]
      }
      throw Object.assign(err as Error, { message: `could not place ${address} on ${replicas} worker(s): ${(err as Error).message}` })
    }
  }

  /**
   * Pins the module on storage peers, which keep their count up and check
   * each other after we leave (`peer.store`); workers' caches alone may
   * evict it. Without storage peers on the mesh, the warm workers are all.
   */
  private async pin (module: CID, wanted: number | undefined, signal: AbortSignal): Promise<string[]> {
    const { capacity, peerId, storage } = this.components
    const offering = capacity.peers().filter(p => p.peerId !== peerId && advertisedFree(p) > 0).length
    const replicas = wanted ?? Math.min(DEPLOY_STORE_REPLICAS, offering)
    if (replicas === 0) {
      return []
    }
    const result = await storage.store(module, { replicas, signal })
    return result.holders.map(holder => holder.peerId)
  }

  /** Calls a function by address and resolves with its response and signed receipt. */
  async call (address: string, request: FunctionRequest = {}, options: CallOptions = {}): Promise<CallResult> {
    const signal = options.signal ?? new AbortController().signal
    setMaxListeners(Infinity, signal) // every attempt and wait of the job listens on it
    const known = await this.resolve(address, signal)
    const result = await this.execute(known, request, { redundancy: options.redundancy ?? 1, signal })
    const output = result.output
    let response: FunctionResponse
    try {
      response = known.abi === 'wagi' ? parseWagiOutput(output) : { status: 200, headers: [['content-type', 'application/octet-stream']], body: output }
    } catch (err) {
      // the module ran and its worker signed what it printed: the proof goes with the error
      throw Object.assign(err as WasmeshError, { receipt: result.receipt, signed: result.receipts[0]?.signed, output })
    }
    return {
      ...response,
      address: functionAddress(known),
      version: known.version,
      job: result.job,
      worker: result.worker,
      receipt: result.receipts[0] as VerifiedReceipt,
      durationMs: result.durationMs
    }
  }

  /** The newest manifest known for an address, asking our neighbours when we know none. */
  async resolve (address: string, signal: AbortSignal): Promise<FunctionManifest> {
    parseFunctionAddress(address)
    const { registry } = this.components
    const known = registry.get(address) ?? await registry.synced().then(() => registry.get(address)) ?? await registry.syncAll(signal).then(() => registry.get(address))
    if (known == null) {
      throw new FunctionNotFoundError(`no manifest for ${address} is known here or to the peers we are connected to`)
    }
    return known.manifest
  }

  private async execute (manifest: FunctionManifest, request: FunctionRequest, options: { redundancy: number, signal: AbortSignal }): Promise<RunResult> {
    const { jobs, requester } = this.components
    const address = functionAddress(manifest)
    const env = manifest.abi === 'wagi' ? wagiEnv(request, `/fn/${address}`, manifest.env) : manifest.env
    const job = await jobs.job(manifest.module, requestBody(request), {
      abi: manifest.abi === 'direct' ? 'direct' : 'wasi',
      env,
      limits: manifest.limits,
      redundancy: options.redundancy
    }, options.signal)
    return requester.execute(job, { signal: options.signal, resume: false })
  }
}
