/**
 * The WASI conformance page: runs suite programs on WebWorkerExecutor, the
 * executor browser peers use. Built and served by test/e2e/wasi-testsuite.spec.ts.
 */
import { WebWorkerExecutor } from '../../../web/executor.ts'
import { fromWire, runSuiteJob } from '../execute.ts'
import type { SuiteOutcome, WireJob } from '../execute.ts'

export interface WasiSuiteHook {
  /** Runs one program on the page's executor, started on first use. */
  run: (job: WireJob) => Promise<SuiteOutcome>
}

declare global {
  interface Window { wasiSuite: WasiSuiteHook }
}

let started: Promise<WebWorkerExecutor> | undefined

async function executor (): Promise<WebWorkerExecutor> {
  started ??= (async () => {
    const created = new WebWorkerExecutor({ slots: 1 })
    await created.start()
    return created
  })()
  return await started
}

window.wasiSuite = {
  run: async job => runSuiteJob(await executor(), fromWire(job))
}
