/**
 * The WASI preview1 conformance suite, browser side: every program of
 * ../shared/wasi-testsuite through WebWorkerExecutor in Chromium, held to
 * the same list of allowed failures (test/wasi-testsuite.expected.json) as
 * the Node executor in test/wasi-testsuite.test.ts, so both runtimes pass
 * exactly the same programs.
 */
import { fileURLToPath } from 'node:url'
import { expect, test } from '@playwright/test'
import { build } from 'vite'
import { servePage, type PageServer } from '../../apps/cli/page-server.ts'
import { toWire } from '../wasi-testsuite/execute.ts'
import type { WasiSuiteHook } from '../wasi-testsuite/page/main.ts'
import { describeFailure, expectedFailures, loadSuite, passes, suiteMissing } from '../wasi-testsuite/suite.ts'

declare global {
  interface Window { wasiSuite: WasiSuiteHook }
}

const root = fileURLToPath(new URL('../wasi-testsuite/page/', import.meta.url))
const outDir = fileURLToPath(new URL('../../build/wasi-testsuite-page/', import.meta.url))
const missing = suiteMissing()
let server: PageServer | undefined

test.beforeAll(async () => {
  if (missing !== undefined) {
    return
  }
  await build({ root, base: './', configFile: false, logLevel: 'warn', build: { outDir, emptyOutDir: true, target: 'es2023' }, worker: { format: 'es' } })
  server = await servePage({ port: 0, root: outDir, bootstrap: () => [] })
})

test.afterAll(async () => {
  await server?.close()
})

test('WebWorkerExecutor in Chromium passes exactly the suite programs the Node executor passes', async ({ page }) => {
  test.skip(missing !== undefined, missing)
  page.on('pageerror', err => { console.log(`[page error] ${err.message}`) })
  await page.goto((server as PageServer).url)
  await page.waitForFunction(() => window.wasiSuite != null)
  const failing = await expectedFailures()
  const cases = await loadSuite()
  const surprises: string[] = []
  let passed = 0
  for (const suiteCase of cases) {
    const name = suiteCase.job.name
    const outcome = await page.evaluate(async job => window.wasiSuite.run(job), toWire(suiteCase.job))
    const ok = passes(outcome, suiteCase)
    passed += ok ? 1 : 0
    if (!ok && failing[name] === undefined) {
      surprises.push(`${name} fails: ${describeFailure(outcome, suiteCase)}`)
    } else if (ok && failing[name] !== undefined) {
      surprises.push(`${name} passes but is listed as failing ("${failing[name]}")`)
    }
  }
  console.log(`wasi-testsuite, browser executor (Chromium): ${passed} of ${cases.length} programs pass`)
  expect(surprises).toEqual([])
})
