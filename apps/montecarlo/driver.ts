/**
 * The Monte Carlo app: estimates pi from random points in the unit square,
 * one job per batch of samples (apps/montecarlo/assembly, a WASI command).
 * Randomness comes only from the seed: each job gets its own seed derived
 * from the run's, so the same options give the same estimate anywhere.
 */
import type { ModuleRef } from '../../protocol/public.ts'
import { malformed, runJobs, type AppRunOptions, type JobDone, type MapPeer } from '../shared.ts'

export const MODULE_FILE = 'montecarlo.wasm'

export interface MonteCarloOptions {
  seed: number
  /** Samples in all, and per job. */
  samples: number
  perJob: number
}

export const MONTECARLO_DEFAULTS: MonteCarloOptions = { seed: 1, samples: 20_000_000, perJob: 1_000_000 }

export interface BatchDone extends JobDone {
  inside: number
  samples: number
  /** The estimate from every batch so far. */
  estimate: number
  /** Samples counted so far. */
  counted: number
}

export interface MonteCarloResult {
  estimate: number
  inside: number
  samples: number
  /** One standard error of the estimate. */
  standardError: number
  workers: Map<string, number>
}

const MASK64 = (1n << 64n) - 1n

/** Job `index`'s seed: the run's seed and the index through a splitmix64 finaliser, so batches do not overlap. */
export function jobSeed (seed: number, index: number): bigint {
  let z = (BigInt(seed) + BigInt(index + 1) * 0x9e3779b97f4a7c15n) & MASK64
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64
  return z ^ (z >> 31n)
}

/** The module's stdin: "seed samples". */
export function batchInput (seed: bigint, samples: number): Uint8Array {
  return new TextEncoder().encode(`${seed} ${samples}\n`)
}

/** Parses "inside samples\n". */
export function parseBatch (output: Uint8Array, index = 0): { inside: number, samples: number } {
  const match = /^(\d+) (\d+)\n$/.exec(new TextDecoder().decode(output))
  if (match == null) {
    throw malformed('montecarlo', index, JSON.stringify(new TextDecoder().decode(output.slice(0, 64))))
  }
  return { inside: Number(match[1]), samples: Number(match[2]) }
}

export function batches (options: MonteCarloOptions): number[] {
  if (!Number.isSafeInteger(options.seed) || options.seed < 0) {
    throw new RangeError('montecarlo: seed must be a non-negative integer')
  }
  if (!Number.isSafeInteger(options.samples) || options.samples < 1 || !Number.isSafeInteger(options.perJob) || options.perJob < 1) {
    throw new RangeError('montecarlo: samples and perJob must be positive integers')
  }
  return Array.from({ length: Math.ceil(options.samples / options.perJob) }, (_, i) => Math.min(options.perJob, options.samples - i * options.perJob))
}

export async function estimatePi (peer: MapPeer, module: ModuleRef, options: MonteCarloOptions, run: AppRunOptions = {}, onBatch?: (batch: BatchDone) => void): Promise<MonteCarloResult> {
  const sizes = batches(options)
  const workers = new Map<string, number>()
  let inside = 0
  let counted = 0
  await runJobs(peer, module, sizes.map((n, i) => batchInput(jobSeed(options.seed, i), n)), 'wasi', run, (output, job) => {
    const batch = parseBatch(output, job.index)
    if (batch.samples !== sizes[job.index] || batch.inside > batch.samples) {
      throw malformed('montecarlo', job.index, `${batch.inside} of ${batch.samples} samples, asked for ${sizes[job.index]}`)
    }
    inside += batch.inside
    counted += batch.samples
    workers.set(job.worker, (workers.get(job.worker) ?? 0) + 1)
    onBatch?.({ ...job, ...batch, estimate: 4 * inside / counted, counted })
  })
  const p = inside / counted
  return { estimate: 4 * p, inside, samples: counted, standardError: 4 * Math.sqrt(p * (1 - p) / counted), workers }
}
