/**
 * The apps from the page: the fractal's tiles are computed by several peers
 * (Node workers and a contributing tab) and drawn as they arrive; the hash
 * search and Monte Carlo finish with the same answer `wasmesh app` gives.
 */
import type { Page } from '@playwright/test'
import { contributing, expect, joined, knowsWorker, openTab, test } from './fixtures.ts'
import { explain, type ProcessNetwork } from '../helpers/processes.ts'

/** Runs `wasmesh app <args> --json` against the test network and parses its output. */
async function cliApp (net: ProcessNetwork, args: string[]): Promise<Record<string, unknown>> {
  const result = await net.run(['app', ...args, '--json'])
  expect(result.code, `wasmesh app ${args.join(' ')} (killed after 120 s if code is null): ${explain(result).slice(-3000)}`).toBe(0)
  return JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>
}

async function runApp (page: Page, app: string): Promise<NonNullable<Window['wasmesh']['app']>> {
  await page.selectOption('#app', app)
  await page.click('#app-run')
  await expect(page.locator('#app-result')).toHaveAttribute('data-state', /ok|error/, { timeout: 120_000 })
  const state = await page.evaluate(() => window.wasmesh.app)
  expect(state?.state, state?.error).toBe('ok')
  return state as NonNullable<Window['wasmesh']['app']>
}

test('the fractal renders tile by tile on several peers, and the same answers come back in the page and the CLI', async ({ browser, net }, testInfo) => {
  test.setTimeout(300_000)
  const [a, b] = await Promise.all([net.startWorker(undefined, { slots: 2 }), net.startWorker(undefined, { slots: 2 })])
  const worker = await openTab(browser, net, { query: '?contribute=2', height: 1600 })
  const tabId = await contributing(worker)
  const tab = await openTab(browser, net, { height: 1600 })
  await joined(tab)
  for (const id of [a.peerId, b.peerId, tabId]) {
    await knowsWorker(tab, id)
  }

  await tab.selectOption('#mb-tile', '32')
  await tab.selectOption('#app', 'mandelbrot')
  await tab.click('#app-run')
  // part-way: some tiles drawn, more to come
  await tab.waitForFunction(() => (window.wasmesh.app?.done ?? 0) > 0)
  await tab.locator('#apps-card').screenshot({ path: testInfo.outputPath('fractal-in-progress.png') })
  await expect(tab.locator('#app-result')).toHaveAttribute('data-state', /ok|error/, { timeout: 120_000 })
  const fractal = await tab.evaluate(() => window.wasmesh.app)
  expect(fractal?.state, fractal?.error).toBe('ok')
  expect(fractal?.done).toBe(256)
  const workers = Object.keys(fractal?.workers ?? {})
  console.log(`fractal tiles per worker: ${JSON.stringify(fractal?.workers)}`)
  expect(workers.length).toBeGreaterThanOrEqual(2)
  await expect(tab.locator('#app-workers li')).toHaveCount(workers.length)
  await tab.locator('#apps-card').screenshot({ path: testInfo.outputPath('fractal.png') })
  await tab.screenshot({ path: testInfo.outputPath('fractal-page.png'), fullPage: true })

  const out = testInfo.outputPath('fractal-cli.png')
  const cliFractal = await cliApp(net, ['mandelbrot', '--tile', '32', '--out', out])
  expect(cliFractal.imageSha256).toBe(fractal?.answer)

  await tab.selectOption('#app', 'hashsearch')
  await tab.fill('#hs-bits', '16')
  await tab.fill('#hs-count', '1000000')
  const search = await runApp(tab, 'hashsearch')
  await tab.locator('#apps-card').screenshot({ path: testInfo.outputPath('hashsearch.png') })
  const cliSearch = await cliApp(net, ['hashsearch', '--bits', '16', '--count', '1000000'])
  expect((cliSearch.matches as Array<{ nonce: number }>).map(m => m.nonce).join(',')).toBe(search.answer)

  await tab.selectOption('#app', 'montecarlo')
  await tab.fill('#mc-samples', '5000000')
  const pi = await runApp(tab, 'montecarlo')
  await tab.locator('#apps-card').screenshot({ path: testInfo.outputPath('montecarlo.png') })
  const cliPi = await cliApp(net, ['montecarlo', '--samples', '5000000'])
  expect(`${String(cliPi.inside)}/5000000`).toBe(pi.answer)
})
