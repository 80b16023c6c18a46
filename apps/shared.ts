/**
 * What the app drivers share: they split a workload into jobs, hand them to
 * `peer.map` and assemble the outputs as they arrive. Isomorphic (no `node:`
 * or DOM imports), so the CLI (apps/cli/commands/app.ts) and the page (apps/page/) run
 * the same code.
 */
import type { MapOptions, ModuleRef, Peer } from '../protocol/public.ts'

/** All a driver needs of a peer; tests can pass a stand-in. */
export type MapPeer = Pick<Peer, 'map'>

export interface AppRunOptions {
  /** Passed on to `peer.map`: redundancy, concurrency, limits, resume. */
  map?: Omit<MapOptions, 'abi' | 'signal'>
  signal?: AbortSignal
}

/** One finished job, as the drivers report it. */
export interface JobDone {
  /** The job's position in the workload. */
  index: number
  /** Peer id of the worker whose output was accepted. */
  worker: string
  durationMs: number
  /** Jobs finished so far, and in all. */
  done: number
  total: number
}

/** Some jobs of an app failed: the rest of the answer is incomplete. */
export class AppJobsFailedError extends Error {
  override name = 'AppJobsFailedError'
  readonly failures: Array<{ index: number, error: Error }>

  constructor (failures: Array<{ index: number, error: Error }>, total: number) {
    const first = failures[0]?.error
    super(`${failures.length} of ${total} jobs failed${first != null ? ` (first: ${first.name}: ${first.message})` : ''}`)
    this.failures = failures
  }
}

/**
 * Runs one job per input through `peer.map` and calls `onOutput` with each
 * verified output as it arrives. Throws AppJobsFailedError after the batch
 * when any job failed: every output that did arrive was still delivered.
 */
export async function runJobs (peer: MapPeer, module: ModuleRef, inputs: Uint8Array[], abi: 'wasi' | 'direct', options: AppRunOptions, onOutput: (output: Uint8Array, job: JobDone) => void): Promise<void> {
  const failures: Array<{ index: number, error: Error }> = []
  let done = 0
  const mapOptions: MapOptions = { ...options.map, abi }
  if (options.signal != null) {
    mapOptions.signal = options.signal
  }
  for await (const r of peer.map(module, inputs, mapOptions)) {
    done++
    if (r.ok) {
      onOutput(r.result.output, { index: r.index, worker: r.result.worker, durationMs: r.result.durationMs, done, total: inputs.length })
    } else {
      failures.push({ index: r.index, error: r.error })
    }
  }
  options.signal?.throwIfAborted()
  if (failures.length > 0) {
    throw new AppJobsFailedError(failures.sort((a, b) => a.index - b.index), inputs.length)
  }
}

/** A job output that does not have the shape the app's module promises. */
export function malformed (app: string, index: number, why: string): Error {
  return new Error(`${app}: job ${index} returned a malformed output: ${why}`)
}
