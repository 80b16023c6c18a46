/**
 * Conformance, Node side: every case of test/conformance/cases.ts through
 * WorkerPoolExecutor must give exactly the expected outcome. The browser
 * side (test/e2e/conformance.spec.ts) checks the same table in Chromium.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { WorkerPoolExecutor } from '../node/executor/worker-pool.ts'
import { buildWasm } from '../scripts/build-wasm.ts'
import { expectedOutcomes, loadCases } from './conformance/cases.ts'
import { runCases } from './conformance/execute.ts'

describe('conformance: WorkerPoolExecutor', () => {
  const executor = new WorkerPoolExecutor({ slots: 1 })

  before(async () => {
    await buildWasm()
    await executor.start()
  })

  after(async () => {
    await executor.stop()
  })

  it('gives the expected exit code, error name and output hash for every case, hostile ones included', async () => {
    const outcomes = await runCases(executor, await loadCases())
    assert.deepEqual(outcomes, expectedOutcomes())
  })
})
