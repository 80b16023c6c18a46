/**
 * WASIX modules (they import `wasix_32v1` or `wasix_64v1`) run through
 * @wasmer/sdk, loaded only when the first such job arrives: its runtime is
 * 4.8 MB of Wasm. The SDK runs each command in its own worker threads (Node)
 * or Web Workers (browsers); the platform says how to import it. Limits are
 * the job's: memory by capping the module's declared maximum (as for every
 * module), time and output by the SDK's own run options. What differs from
 * our WASI host (no mounts, real clocks, argv[0]) is in docs/runtimes.md.
 */
import { ExecutorError, InvalidModuleError, InvalidMountError, OutputLimitError, TimeLimitError, WasmTrapError, WasmeshError, errorToWire } from '../errors.ts'
import { prepareModule } from './prepare.ts'
import type { ExecuteResult, ResourceLimits } from './executor.ts'

/** Bytes of stderr kept, as the WASI host keeps them. */
const STDERR_TAIL_BYTES = 4096

/** Sandboxes' packages kept by module CID, least recently used dropped first. */
const PACKAGE_CACHE_SIZE = 16

/** The part of @wasmer/sdk we use (its own types name DOM classes, which protocol/ cannot see). */
export interface WasmerSdk {
  Wasmer: new (options?: { cache?: false | 'memory' }) => WasmerClient
}

interface WasmerClient {
  ready: () => Promise<unknown>
  packages: { load: (source: Uint8Array) => Promise<WasmerPackage> }
  sandboxes: { create: (options: { packages: readonly WasmerPackage[], env?: Readonly<Record<string, string>>, network: { mode: 'disabled' } }) => Promise<WasmerSandbox> }
  close: () => Promise<void>
}

type WasmerPackage = object

interface WasmerSandbox {
  command: (pkg: WasmerPackage, args: readonly string[]) => { run: (options: { stdin: Uint8Array, timeoutMs: number, outputBytes: number, check: false }) => Promise<WasmerOutput> }
  close: () => Promise<void>
}

interface WasmerOutput {
  exitCode: number
  reason: 'exited' | 'terminated' | 'timeout'
  stdout: { bytes: Uint8Array, truncated: boolean }
  stderr: { bytes: Uint8Array, truncated: boolean }
}

export interface WasixJob {
  /** The module's CID: with the memory limit, the package cache key. */
  cid: string
  bytes: Uint8Array
  /** argv[1…]: the SDK names argv[0] itself. */
  args: readonly string[]
  env: Readonly<Record<string, string>>
  input: Uint8Array
  limits: ResourceLimits
  /** WASIX jobs take no mounts: the SDK's filesystem lives under /workspace only. */
  mounts: number
  signal?: AbortSignal
}

/** Runs WASIX jobs through one lazily started @wasmer/sdk client. */
export class WasixRunner {
  readonly #load: () => Promise<WasmerSdk>
  #client?: Promise<WasmerClient>
  readonly #packages = new Map<string, Promise<WasmerPackage>>()

  /** `load` imports the SDK for this platform (node/wasix.ts, web/wasix.ts). */
  constructor (load: () => Promise<WasmerSdk>) {
    this.#load = load
  }

  /** Runs one job in a fresh sandbox; like the executor, resolves with a result for everything the module did. */
  async run (job: WasixJob): Promise<ExecuteResult> {
    const compileStarted = performance.now()
    const key = `${job.cid}:${job.limits.memoryBytes}`
    const moduleCached = this.#packages.has(key)
    if (job.mounts > 0) {
      return failed(new InvalidMountError('a WASIX job cannot take mounts: @wasmer/sdk only offers a /workspace folder of its own'), 0, moduleCached)
    }
    let pkg: WasmerPackage
    let client: WasmerClient
    try {
      client = await this.#start()
      pkg = await this.#package(client, key, job)
    } catch (err) {
      if (err instanceof WasmeshError) {
        return failed(err, performance.now() - compileStarted, false)
      }
      throw err
    }
    const compileMs = moduleCached ? 0 : performance.now() - compileStarted
    job.signal?.throwIfAborted()
    const started = performance.now()
    const sandbox = await client.sandboxes.create({ packages: [pkg], env: job.env, network: { mode: 'disabled' } })
    const onAbort = (): void => { void sandbox.close() }
    job.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const output = await sandbox.command(pkg, job.args).run({ stdin: job.input, timeoutMs: job.limits.timeoutMs, outputBytes: job.limits.outputBytes, check: false })
      job.signal?.throwIfAborted()
      const execMs = performance.now() - started
      const result: ExecuteResult = {
        exitCode: output.reason === 'exited' ? output.exitCode : -1,
        output: output.stdout.bytes,
        stderr: output.stderr.bytes.subarray(Math.max(0, output.stderr.bytes.byteLength - STDERR_TAIL_BYTES)),
        stats: { compileMs, execMs, moduleCached }
      }
      if (output.reason === 'timeout') {
        result.error = errorToWire(new TimeLimitError(`the job ran past its ${job.limits.timeoutMs} ms time limit`))
      } else if (output.reason === 'terminated') {
        result.error = errorToWire(new WasmTrapError(`the module was terminated (exit status ${output.exitCode})`))
      } else if (output.stdout.truncated) {
        result.error = errorToWire(new OutputLimitError(`the module wrote more than the ${job.limits.outputBytes} bytes of output allowed`))
        result.exitCode = -1
      }
      return result
    } catch (err) {
      job.signal?.throwIfAborted()
      // The SDK reports a trap as an EXECUTION_ERROR carrying the engine's RuntimeError text.
      const message = (err as Error).message
      const trap = /RuntimeError: ([^\n]+)/.exec(message)
      return failed(new WasmTrapError(`the module trapped: ${trap?.[1] ?? message.split('\n')[0] ?? 'unknown'}`), performance.now() - started, moduleCached, compileMs)
    } finally {
      job.signal?.removeEventListener('abort', onAbort)
      await sandbox.close().catch(() => {})
    }
  }

  async stop (): Promise<void> {
    const client = this.#client
    this.#client = undefined
    this.#packages.clear()
    await (await client?.catch(() => undefined))?.close()
  }

  async #start (): Promise<WasmerClient> {
    this.#client ??= (async () => {
      let sdk: WasmerSdk
      try {
        sdk = await this.#load()
      } catch (err) {
        throw new ExecutorError(`could not load @wasmer/sdk, which runs WASIX modules: ${(err as Error).message}`, { cause: err })
      }
      const { Wasmer } = sdk
      const client = new Wasmer({ cache: 'memory' })
      await client.ready()
      return client
    })()
    try {
      return await this.#client
    } catch (err) {
      this.#client = undefined
      throw err
    }
  }

  /** The SDK's package of the module with the job's memory cap written in, cached under `key` (CID and cap). */
  async #package (client: WasmerClient, key: string, job: WasixJob): Promise<WasmerPackage> {
    let pkg = this.#packages.get(key)
    this.#packages.delete(key)
    if (pkg === undefined) {
      const patched = prepareModule(job.bytes, 'wasi', job.limits, true)
      pkg = client.packages.load(patched).catch((err: unknown) => {
        throw new InvalidModuleError(`@wasmer/sdk could not load the module: ${(err as Error).message.split('\n')[0] ?? ''}`, { cause: err })
      })
    }
    this.#packages.set(key, pkg)
    for (const oldest of this.#packages.keys()) {
      if (this.#packages.size <= PACKAGE_CACHE_SIZE) {
        break
      }
      this.#packages.delete(oldest)
    }
    try {
      return await pkg
    } catch (err) {
      this.#packages.delete(key)
      throw err
    }
  }
}

function failed (error: Error, execMs: number, moduleCached: boolean, compileMs = 0): ExecuteResult {
  return { exitCode: -1, output: new Uint8Array(0), stderr: new Uint8Array(0), error: errorToWire(error), stats: { compileMs, execMs, moduleCached } }
}
