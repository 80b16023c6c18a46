import { FETCH_TIMEOUT_MS, MAX_MODULE_BYTES } from '../constants.ts'
import { DEFAULT_FILESYSTEM_BYTES, MAX_INODES } from '../runtime/fs.ts'
import type { ExecuteResult, Executor, Mount } from '../runtime/executor.ts'
import type { ContentStore } from '../store/content.ts'
import type { MountOutput, ReceiptStats } from '../wire/receipt.ts'
import type { EncodedJob } from '../wire/job.ts'

export interface ExecuteJobComponents {
  content: Pick<ContentStore, 'get' | 'getTree' | 'addTree'>
  executor: Executor
}

export interface JobRun extends Omit<ExecuteResult, 'stats' | 'mounts'> {
  stats: ReceiptStats
  /** Time the job waited in the executor for a thread (part of its queue time, not of its run). */
  waitMs: number
  /** Each writable mount's final tree, stored in our content store and named by CID; absent when the module never ran. */
  mounts?: MountOutput[]
}

/**
 * Fetches a job's module, input and mounted trees by CID (all within
 * FETCH_TIMEOUT_MS: content nobody has would otherwise hold a slot for
 * ever), runs it, and stores each writable mount's final tree as UnixFS.
 * The worker signs what this returns; a requester auditing a disputed job
 * runs it the same way.
 */
export async function executeJob (job: EncodedJob, components: ExecuteJobComponents, signal: AbortSignal): Promise<JobRun> {
  const { content, executor } = components
  const { spec } = job
  // a job thread that has to start does so while the input, mounts and module are fetched
  executor.expectJob?.(spec.module.toString())
  let fetchMs = 0
  const fetchSignal = AbortSignal.any([signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)])
  const timed = async <T>(fetch: () => Promise<T>): Promise<T> => {
    const start = performance.now()
    try {
      return await fetch()
    } finally {
      fetchMs += performance.now() - start
    }
  }
  const inputRef = spec.input
  const input = inputRef instanceof Uint8Array
    ? inputRef
    : await timed(async () => content.get(inputRef, { signal: fetchSignal, maxBytes: MAX_MODULE_BYTES, what: 'input' }))
  const mounts: Mount[] = []
  for (const mount of spec.mounts ?? []) {
    const mountCid = mount.cid
    const tree = mountCid == null
      ? { type: 'directory' as const, entries: {} }
      : await timed(async () => content.getTree(mountCid, { signal: fetchSignal, maxBytes: DEFAULT_FILESYSTEM_BYTES, maxEntries: MAX_INODES, what: `mount at ${mount.path}` }))
    mounts.push({ path: mount.path, tree, writable: mount.writable })
  }
  const result = await executor.execute({
    module: {
      cid: spec.module.toString(),
      load: async (loadSignal) => timed(async () => content.get(spec.module, { signal: AbortSignal.any([loadSignal, fetchSignal]), maxBytes: MAX_MODULE_BYTES, what: 'module' }))
    },
    abi: spec.abi,
    args: spec.args,
    env: spec.env,
    input,
    limits: spec.limits,
    ...(mounts.length > 0 ? { mounts } : {}),
    signal
  })
  const { mounts: finalTrees, ...rest } = result
  const run: JobRun = { ...rest, stats: { fetchMs, compileMs: result.stats.compileMs, execMs: result.stats.execMs, moduleCached: result.stats.moduleCached }, waitMs: result.stats.waitMs ?? 0 }
  if (finalTrees != null && finalTrees.length > 0) {
    run.mounts = []
    for (const mount of finalTrees) {
      run.mounts.push({ path: mount.path, cid: await content.addTree(mount.tree, signal) })
    }
  }
  return run
}
