/**
 * Conformance, browser side: the cases of test/conformance/cases.ts through
 * WebWorkerExecutor in Chromium must give exactly the table the Node executor
 * is held to (test/conformance.test.ts). Also logs the per-job overhead of
 * each ABI, cold and warm, in Chromium (docs/runtimes.md).
 */
import { fileURLToPath } from 'node:url'
import { expect, test } from '@playwright/test'
import { build } from 'vite'
import { servePage, type PageServer } from '../../apps/cli/page-server.ts'
import { buildWasm } from '../../scripts/build-wasm.ts'
import { expectedOutcomes, loadCases } from '../conformance/cases.ts'
import type { ConformanceHook } from '../conformance/page/main.ts'

declare global {
  interface Window { conformance: ConformanceHook }
}

const root = fileURLToPath(new URL('../conformance/page/', import.meta.url))
const outDir = fileURLToPath(new URL('../../build/conformance/', import.meta.url))
let server: PageServer

test.beforeAll(async () => {
  await buildWasm()
  await build({ root, base: './', configFile: false, logLevel: 'warn', build: { outDir, emptyOutDir: true, target: 'es2023' }, worker: { format: 'es' } })
  server = await servePage({ port: 0, root: outDir, bootstrap: () => [] })
})

test.afterAll(async () => {
  await server?.close()
})

test('WebWorkerExecutor in Chromium gives the same outcome as the Node executor for every case', async ({ page }) => {
  page.on('pageerror', err => { console.log(`[page error] ${err.message}`) })
  await page.goto(server.url)
  await page.waitForFunction(() => window.conformance != null)
  const cases = await loadCases()
  const outcomes = await page.evaluate(async wire => window.conformance.run(wire), cases)
  expect(outcomes).toEqual(expectedOutcomes())
})

test('per-job overhead of each ABI in Chromium, cold and warm', async ({ page }) => {
  await page.goto(server.url)
  await page.waitForFunction(() => window.conformance != null)
  const cases = await loadCases()
  for (const name of ['echo-empty', 'direct-reverse']) {
    const c = cases.find(entry => entry.name === name)
    if (c === undefined) {
      throw new Error(`no case ${name}`)
    }
    const stats = await page.evaluate(async ([wire, runs]) => window.conformance.overhead(wire, runs), [c, 100] as const)
    console.log(`chromium ${c.abi} (${name}): cold median ${stats.cold.medianMs} ms p95 ${stats.cold.p95Ms} ms; warm median ${stats.warm.medianMs} ms p95 ${stats.warm.p95Ms} ms`)
    expect(stats.warm.runs).toBe(100)
  }
})
