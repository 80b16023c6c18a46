/**
 * Misbehaviour on purpose, for testing requesters from outside (the
 * documented WASMESH_TEST_FAULT aid of cross-process tests). Each fault
 * but `stall` wraps the executor, so the production path stays untouched:
 * - `wrong-output`: every output corrupted, under a valid signature;
 * - `wrong-mount`: the output right, but a file planted in every writable
 *   mount's final tree, under a valid signature;
 * - `sleeper`: honest for its first SLEEPER_HONEST_JOBS jobs (long enough to
 *   earn trust), then every output corrupted;
 * - `fake-timeout`: every job answered at once with a signed TimeLimitError;
 * - `fake-trap`: every job answered at once with a signed WasmTrapError;
 * - `stall`: jobs accepted and never answered, with no heartbeat (the job
 *   server's silence, which no executor can fake);
 * - `slow`: honest, but every job takes SLOW_FAULT_MS longer (a loaded
 *   machine), heartbeats going on;
 * - `drop-stored`: as a storage holder, deletes the blocks of every pin just
 *   after signing its receipt, and goes on claiming to hold it (storage/holder.ts).
 */
import { TimeLimitError, WasmTrapError } from '../errors.ts'
import type { ExecuteRequest, ExecuteResult, Executor } from '../runtime/executor.ts'

export type TestFault = 'wrong-output' | 'wrong-mount' | 'sleeper' | 'fake-timeout' | 'fake-trap' | 'stall' | 'slow' | 'drop-stored'

export const TEST_FAULTS: readonly TestFault[] = ['wrong-output', 'wrong-mount', 'sleeper', 'fake-timeout', 'fake-trap', 'stall', 'slow', 'drop-stored']

/** How much longer a `slow` worker takes over every job. */
export const SLOW_FAULT_MS = 5_000

/** Jobs a sleeper runs honestly before it starts lying. */
export const SLEEPER_HONEST_JOBS = 40

const CLAIMED: Partial<Record<TestFault, { name: string, message: string }>> = {
  'fake-timeout': { name: TimeLimitError.NAME, message: 'the job ran past its time limit' },
  'fake-trap': { name: WasmTrapError.NAME, message: 'the module trapped: unreachable' }
}

/** The executor a faulty worker runs jobs with. */
export function faultyExecutor (inner: Executor, fault: TestFault): Executor {
  if (fault === 'stall' || fault === 'drop-stored') {
    return inner
  }
  let executed = 0
  return {
    get slots () { return inner.slots },
    start: async () => { await inner.start() },
    stop: async () => { await inner.stop() },
    cachedModules: () => inner.cachedModules(),
    execute: async (request: ExecuteRequest): Promise<ExecuteResult> => {
      const claimed = CLAIMED[fault]
      if (claimed != null) {
        return { exitCode: -1, output: new Uint8Array(0), stderr: new Uint8Array(0), error: claimed, stats: { compileMs: 0, execMs: 0, moduleCached: false } }
      }
      const result = await inner.execute(request)
      if (fault === 'slow') {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, SLOW_FAULT_MS)
          request.signal?.addEventListener('abort', () => { clearTimeout(timer); reject(request.signal?.reason) }, { once: true })
        })
        return result
      }
      if (fault === 'sleeper' && ++executed <= SLEEPER_HONEST_JOBS) {
        return result
      }
      if (fault === 'wrong-mount') {
        const planted = new TextEncoder().encode('planted')
        return { ...result, ...(result.mounts != null ? { mounts: result.mounts.map(mount => ({ ...mount, tree: { type: 'directory', entries: { ...mount.tree.entries, planted: { type: 'file', content: planted } } } })) } : {}) }
      }
      return { ...result, output: new Uint8Array([...result.output, 0x21]) }
    }
  }
}
