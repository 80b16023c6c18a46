/**
 * The browser half of the conformance suite: exposes the shared runner on
 * `window.conformance` with WebWorkerExecutor, the executor browser peers use.
 * Built and served by test/e2e/conformance.spec.ts.
 */
import { WebWorkerExecutor } from '../../../web/executor.ts'
import { measureOverhead, runCases } from '../execute.ts'
import type { OverheadStats, Outcome, WireCase } from '../execute.ts'

export interface ConformanceHook {
  run: (cases: WireCase[]) => Promise<Outcome[]>
  overhead: (c: WireCase, runs: number) => Promise<{ cold: OverheadStats, warm: OverheadStats }>
}

declare global {
  interface Window { conformance: ConformanceHook }
}

/** A fresh single-slot executor per call, stopped afterwards, as the Node side does. */
async function withExecutor<T> (body: (executor: WebWorkerExecutor) => Promise<T>): Promise<T> {
  const executor = new WebWorkerExecutor({ slots: 1 })
  await executor.start()
  try {
    return await body(executor)
  } finally {
    await executor.stop()
  }
}

window.conformance = {
  run: async cases => withExecutor(async executor => runCases(executor, cases)),
  overhead: async (c, runs) => withExecutor(async executor => measureOverhead(executor, c, runs))
}
