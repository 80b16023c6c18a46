import { contentHash } from '../wire/cbor.ts'
import { executeJob } from '../worker/execute-job.ts'
import { outcomeKey } from './outcome.ts'
import type { Executor } from '../runtime/executor.ts'
import type { ContentStore } from '../store/content.ts'
import type { EncodedJob } from '../wire/job.ts'

export interface AuditorComponents {
  content: Pick<ContentStore, 'get' | 'getTree' | 'addTree'>
  createExecutor: (slots: number) => Executor
}

/**
 * Runs a disputed job on this peer, to settle a vote that colluders could
 * have won. The executor (one slot) starts on the first audit and stops with
 * the requester: a requester that never sees a dispute never pays for it.
 */
export class Auditor {
  private readonly components: AuditorComponents
  private executor?: Promise<Executor>

  constructor (components: AuditorComponents) {
    this.components = components
  }

  /** The outcome key of our own run of the job, comparable with receipts'. */
  async outcome (job: EncodedJob, signal: AbortSignal): Promise<string> {
    this.executor ??= (async () => {
      const executor = this.components.createExecutor(1)
      await executor.start()
      return executor
    })()
    const run = await executeJob(job, { content: this.components.content, executor: await this.executor }, signal)
    return outcomeKey({ outputHash: await contentHash(run.output), exitCode: run.exitCode, error: run.error, mounts: run.mounts })
  }

  start (): void {}

  async stop (): Promise<void> {
    const executor = this.executor
    this.executor = undefined
    await (await executor)?.stop()
  }
}
