/**
 * The official WASI preview1 conformance suite through the Node executor
 * (WorkerPoolExecutor, worker_threads): every program of ../shared/wasi-testsuite
 * run per its JSON spec, its root directory preopened as `/` (a writable
 * mount, fresh per program). The programs listed in
 * test/wasi-testsuite.expected.json may fail, and only those: a listed one
 * that passes fails the test too, so the list stays true. The browser
 * executor is held to the same list by test/e2e/wasi-testsuite.spec.ts.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { WorkerPoolExecutor } from '../node/executor/worker-pool.ts'
import { runSuiteJob } from './wasi-testsuite/execute.ts'
import { describeFailure, expectedFailures, loadSuite, passes, suiteMissing } from './wasi-testsuite/suite.ts'
import type { SuiteCase } from './wasi-testsuite/suite.ts'

const missing = suiteMissing()

describe('WASI preview1 conformance suite: WorkerPoolExecutor', { skip: missing ?? false }, () => {
  const executor = new WorkerPoolExecutor({ slots: 1 })
  let cases: SuiteCase[] = []
  let failing: Record<string, string> = {}
  const passed: string[] = []

  before(async () => {
    cases = await loadSuite()
    failing = await expectedFailures()
    await executor.start()
  })

  after(async () => {
    await executor.stop()
    console.log(`wasi-testsuite, Node executor: ${passed.length} of ${cases.length} programs pass`)
  })

  it('runs every program and matches test/wasi-testsuite.expected.json', async () => {
    const surprises: string[] = []
    for (const suiteCase of cases) {
      const outcome = await runSuiteJob(executor, suiteCase.job)
      const name = suiteCase.job.name
      const ok = passes(outcome, suiteCase)
      if (ok) {
        passed.push(name)
      }
      if (!ok && failing[name] === undefined) {
        surprises.push(`${name} fails: ${describeFailure(outcome, suiteCase)}`)
      } else if (ok && failing[name] !== undefined) {
        surprises.push(`${name} passes but is listed as failing ("${failing[name]}"): remove it from the list`)
      }
    }
    const unknown = Object.keys(failing).filter(name => !cases.some(suiteCase => suiteCase.job.name === name))
    surprises.push(...unknown.map(name => `${name} is listed as failing but is not in the suite`))
    assert.deepEqual(surprises, [])
  })
})
