import { CID } from 'multiformats/cid'
import { fromString as stringToBytes } from 'uint8arrays/from-string'
import { DEFAULT_LIMITS, MAX_INLINE_BYTES } from '../constants.ts'
import { InvalidModuleError, InvalidMountError } from '../errors.ts'
import { encodeJob, type EncodedJob, type MountSpec } from '../wire/job.ts'
import type { Abi, ResourceLimits, TreeEntry } from '../runtime/executor.ts'
import type { ContentStore } from '../store/content.ts'

/** A Wasm module: its bytes, its CID (object or string), or a URL to fetch it from. */
export type ModuleRef = Uint8Array | CID | URL | string

/** A job input: bytes, text (sent as UTF-8), or the CID of content on the network. */
export type InputRef = Uint8Array | string | CID

/** What a job asks for besides its module and input. */
export interface JobOptions {
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
   * Directories the module sees (wasi). Writable mounts' final trees come
   * back in `RunResult.mounts`, named by CID in the signed receipt.
   */
  mounts?: MountOption[]
}

/** A directory the module sees at `path`. */
export interface MountOption {
  /** Absolute guest path: `/`, `/data`, `/out`… */
  path: string
  /**
   * What the mount starts with: the CID (object or string) of a UnixFS
   * directory, or of a file (seen as the mount's one entry, named by its
   * CID), or a tree, added to our store first. Absent: an empty directory.
   */
  from?: CID | string | TreeEntry
  /** A writable mount is copy-on-write over `from`; its final tree comes back. @default false */
  writable?: boolean
}

export interface JobBuilderComponents {
  content: Pick<ContentStore, 'add' | 'addTree'>
}

/**
 * Turns what a caller passes (bytes, text, CIDs, URLs) into job specs named
 * by CID: module bytes and large inputs are added to our content store, so
 * workers fetch them by CID; small inputs travel inline.
 */
export class JobBuilder {
  private readonly components: JobBuilderComponents

  constructor (components: JobBuilderComponents) {
    this.components = components
  }

  async module (module: ModuleRef, signal: AbortSignal): Promise<CID> {
    if (module instanceof Uint8Array) {
      return this.components.content.add(module, signal)
    }
    const cid = CID.asCID(module)
    if (cid != null) {
      return cid
    }
    if (module instanceof URL || /^(https?|data|blob|file):/.test(module as string)) {
      return this.components.content.add(await download(module instanceof URL ? module : new URL(module as string), signal), signal)
    }
    try {
      return CID.parse(module as string)
    } catch {
      throw new InvalidModuleError(`"${String(module)}" is neither a CID nor a URL; pass the module's bytes, its CID or a URL`)
    }
  }

  async job (module: CID, input: InputRef | undefined, options: JobOptions, signal: AbortSignal): Promise<EncodedJob> {
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
      redundancy: options.redundancy ?? 1,
      ...(options.mounts != null && options.mounts.length > 0 ? { mounts: await this.mounts(options.mounts, signal) } : {})
    })
  }

  /** Names each mount's starting tree by CID, adding trees given as data to our store. */
  async mounts (mounts: readonly MountOption[], signal: AbortSignal): Promise<MountSpec[]> {
    const specs: MountSpec[] = []
    for (const mount of mounts) {
      const spec: MountSpec = { path: mount.path, writable: mount.writable ?? false }
      if (typeof mount.from === 'string') {
        try {
          spec.cid = CID.parse(mount.from)
        } catch {
          throw new InvalidMountError(`the mount at ${mount.path} starts from "${mount.from}", which is not a CID`)
        }
      } else if (mount.from != null) {
        spec.cid = CID.asCID(mount.from) ?? await this.components.content.addTree(mount.from as TreeEntry, signal)
      }
      specs.push(spec)
    }
    return specs
  }
}

async function download (url: URL, signal: AbortSignal): Promise<Uint8Array> {
  let response: Response
  try {
    response = await fetch(url, { signal })
  } catch (err) {
    throw new InvalidModuleError(`could not download the module from ${url.href}: ${(err as Error).message}`, { cause: err })
  }
  if (!response.ok) {
    throw new InvalidModuleError(`could not download the module from ${url.href}: HTTP ${response.status}`)
  }
  return new Uint8Array(await response.arrayBuffer())
}
