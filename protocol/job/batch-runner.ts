import { BatchNotFoundError } from '../errors.ts'
import { Chunker } from './chunker.ts'
import { runMany, type MapResult } from './run-many.ts'
import type { JobBuilder, InputRef, JobOptions, ModuleRef } from './submit.ts'
import type { Requester } from './requester.ts'
import type { BatchStore } from '../store/batches.ts'
import type { ResultStore } from '../store/results.ts'
import type { EncodedJob } from '../wire/job.ts'

export interface BatchRunnerComponents {
  jobs: JobBuilder
  requester: Requester
  batches: BatchStore
  results: ResultStore
}

/** A stored batch, with how many of its jobs have an accepted result and how many failed last time they ran. */
export interface BatchSummary { id: string, total: number, done: number, failed: number, createdAt: number }

/**
 * Batches that survive restarts: every job is stored before any runs, and
 * results as they are accepted, so `resume` after a crash or a reload runs
 * only what is left.
 */
export class BatchRunner {
  private readonly components: BatchRunnerComponents

  constructor (components: BatchRunnerComponents) {
    this.components = components
  }

  async * start (id: string, module: ModuleRef, inputs: Iterable<InputRef> | AsyncIterable<InputRef>, options: JobOptions, concurrency: number, signal: AbortSignal): AsyncGenerator<MapResult> {
    const { jobs, batches } = this.components
    const moduleCid = await jobs.module(module, signal)
    const specs: EncodedJob[] = []
    for await (const input of inputs) {
      specs.push(await jobs.job(moduleCid, input, options, signal))
    }
    await batches.save(id, specs, signal)
    yield * this.run(specs, concurrency, signal)
  }

  /** Rejects with BatchNotFoundError if no batch has that id. */
  async * resume (id: string, concurrency: number, signal: AbortSignal): AsyncGenerator<MapResult> {
    const { batches } = this.components
    const record = await batches.get(id, signal)
    if (record == null) {
      throw new BatchNotFoundError(`no stored batch is named "${id}"`)
    }
    yield * this.run(await batches.jobs(record, signal), concurrency, signal)
  }

  async list (signal?: AbortSignal): Promise<BatchSummary[]> {
    const { batches, results } = this.components
    return Promise.all((await batches.list(signal)).map(async record => {
      const states = await Promise.all(record.jobs.map(async cid => await results.has(cid, signal) ? 'done' : await results.hasFailed(cid, signal) ? 'failed' : 'pending'))
      return { id: record.id, total: record.jobs.length, done: states.filter(s => s === 'done').length, failed: states.filter(s => s === 'failed').length, createdAt: record.createdAt }
    }))
  }

  async delete (id: string, signal?: AbortSignal): Promise<void> {
    await this.components.batches.delete(id, signal)
  }

  private async * run (specs: EncodedJob[], concurrency: number, signal: AbortSignal): AsyncGenerator<MapResult> {
    const { requester } = this.components
    const chunker = new Chunker(requester, signal)
    yield * runMany(specs.map(job => async () => chunker.run(job, { resume: true })), concurrency, signal, requester)
  }
}
