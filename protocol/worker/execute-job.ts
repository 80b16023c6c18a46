import { FETCH_TIMEOUT_MS, MAX_MODULE_BYTES } from '../constants.ts'
import type { ExecuteResult, Executor } from '../runtime/executor.ts'
import type { ContentStore } from '../store/content.ts'
import type { ReceiptStats } from '../wire/receipt.ts'
import type { EncodedJob } from '../wire/job.ts'

export interface ExecuteJobComponents {
  content: Pick<ContentStore, 'get'>
  executor: Executor
}

export interface JobRun extends Omit<ExecuteResult, 'stats'> {
  stats: ReceiptStats
}

/**
 * Fetches a job's module and input by CID (each within FETCH_TIMEOUT_MS:
 * content nobody has would otherwise hold a slot for ever) and runs it. The
 * worker signs what this returns; a requester auditing a disputed job runs
 * it the same way.
 */
export async function executeJob (job: EncodedJob, components: ExecuteJobComponents, signal: AbortSignal): Promise<JobRun> {
  const { content, executor } = components
  const { spec } = job
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
    signal
  })
  return { ...result, stats: { fetchMs, compileMs: result.stats.compileMs, execMs: result.stats.execMs, moduleCached: result.stats.moduleCached } }
}
