/**
 * Batches from the page's Run card: one job per input line, a progress bar
 * and a row per job; stored in IndexedDB as they run, so a reload resumes the
 * batch by itself without running finished jobs again.
 */
import { join } from 'node:path'
import type { Page } from '@playwright/test'
import { expect, joined, knowsWorker, openTab, test } from './fixtures.ts'
import { repoRoot } from '../helpers/processes.ts'

async function batchMode (page: Page): Promise<void> {
  await page.locator('.segmented').getByText('Batch', { exact: true }).click()
  await expect(page.locator('#batch-fields')).toBeVisible()
}

test('a batch run from the page resumes by itself after a reload, without rerunning finished jobs', async ({ browser, net }, testInfo) => {
  const worker = await net.startWorker()
  const page = await openTab(browser, net)
  await joined(page)
  await knowsWorker(page, worker.peerId)

  await page.selectOption('#demo', 'spin')
  await batchMode(page)
  const inputs = Array.from({ length: 20 }, (_, i) => String(400 + i))
  await page.fill('#batch-inputs', inputs.join('\n'))
  await expect(page.locator('#batch-count')).toHaveText('20 jobs')
  await page.fill('#batch-name', 'spin-reload')
  await page.click('#batch-run')
  await expect(page.locator('#batch')).toHaveAttribute('data-state', 'running')
  await expect(page.locator('#batch-results li')).toHaveCount(20)
  await expect(page.locator('#batch-results li').first()).toContainText('400')

  await page.locator('#run-card').screenshot({ path: testInfo.outputPath('batch-running.png') })
  // ~400 ms a job on one slot: reload once a few have finished, at once (with 150 ms jobs, all 20 finished now and then before the reload)
  await page.waitForFunction(() => (window.wasmesh.batch?.done ?? 0) >= 3, undefined, { timeout: 60_000 })
  const before = await page.evaluate(() => window.wasmesh.batch!.rows.filter(row => row.state === 'ok').map(row => ({ index: row.index, job: row.job })))
  expect(before.length).toBeLessThan(20)
  await page.reload()
  await joined(page)

  // nobody clicks anything: the page finds the stored batch and runs what is left
  await expect(page.locator('#batch')).toBeVisible()
  await expect(page.locator('#mode-batch')).toBeChecked()
  await expect(page.locator('#batch-name')).toHaveValue('spin-reload')
  await expect(page.locator('#batch-title')).toHaveText('Batch "spin-reload"')
  await expect(page.locator('#batch-module')).toHaveText('spin.wasm')
  await expect(page.locator('#batch-note')).toContainText(/Resumed after the reload: \d+ finished jobs? from before the reload/)
  const resumedFrom = await page.evaluate(() => window.wasmesh.batch?.resumedFrom ?? -1)
  expect(resumedFrom).toBeGreaterThanOrEqual(before.length)
  await expect(page.locator('#batch')).toHaveAttribute('data-state', /ok|error/, { timeout: 60_000 })
  const batch = await page.evaluate(() => window.wasmesh.batch)
  expect(batch?.state, JSON.stringify(batch?.rows.filter(row => row.state !== 'ok'))).toBe('ok')
  await expect(page.locator('#batch-status')).toContainText('20/20 done')
  await expect(page.locator('#batch-failed')).toBeHidden()
  await expect(page.locator('#batch-badge')).toHaveText('✓ all receipts verified')
  await expect(page.locator('#batch-discard')).toBeHidden()

  const rows = page.locator('#batch-results li')
  await expect(rows).toHaveCount(20)
  await expect(rows.locator('.out')).toHaveText(Array(20).fill('done'))
  await expect(rows.locator('.in')).toHaveText(inputs)
  await expect(page.locator('#batch-results li[data-state="ok"]')).toHaveCount(20)
  // finished before the reload: read back from storage, not run again, and marked so
  for (const { index, job } of before) {
    const row = page.locator(`#batch-results li[data-index="${index}"]`)
    await expect(row).toHaveAttribute('data-resumed', 'true')
    await expect(row.locator('.tag')).toHaveText('from before reload')
    expect(batch?.rows[index]?.job).toBe(job)
    expect(batch?.rows[index]?.resumed).toBe(true)
  }
  expect(await page.locator('#batch-results li[data-resumed="true"]').count()).toBe(resumedFrom)
  await expect(rows.locator('.badge')).toHaveText(Array(20).fill('✓ verified'))
  await expect(rows.first().locator('.by')).toContainText(worker.peerId.slice(-6))
  // finished, so forgotten: another reload starts clean
  expect(await page.evaluate(async () => window.wasmesh.peer!.listBatches())).toEqual([])
  await page.locator('#run-card').screenshot({ path: testInfo.outputPath('batch-done.png') })
  await page.screenshot({ path: testInfo.outputPath('batch-done-page.png'), fullPage: true })
})

test('bad batch input gets a message, failed jobs are counted, and a batch can be discarded', async ({ browser, net }, testInfo) => {
  const worker = await net.startWorker()
  const page = await openTab(browser, net)
  await joined(page)
  await knowsWorker(page, worker.peerId)
  await batchMode(page)

  const error = page.locator('#batch-error')
  await page.fill('#batch-inputs', '\n\n')
  await page.click('#batch-run')
  await expect(error).toContainText('Enter at least one input')
  await page.fill('#batch-inputs', 'one\n\nthree\n')
  await page.click('#batch-run')
  await expect(error).toHaveText('Line 2 is empty: each line is one job\'s stdin. Remove empty lines.')
  await page.fill('#batch-inputs', 'one\ntwo')
  await page.fill('#batch-name', 'has spaces')
  await page.click('#batch-run')
  await expect(error).toContainText('Name the batch')
  await page.fill('#batch-name', 'not-wasm')
  await page.selectOption('#demo', 'file')
  await page.setInputFiles('#file', { name: 'notes.wasm', mimeType: 'application/wasm', buffer: Buffer.from('this is not wasm') })
  await expect(page.locator('#file-name')).toContainText('notes.wasm')
  await page.click('#batch-run')
  await expect(error).toContainText('not a WebAssembly module')
  await expect(page.locator('#batch')).toBeHidden()
  await page.locator('#run-card').screenshot({ path: testInfo.outputPath('batch-bad-input.png') })

  // every job of a module that traps fails with a signed receipt: counted, shown, and the batch ends
  await page.setInputFiles('#file', join(repoRoot, 'build/wasm/trap.wasm'))
  await expect(page.locator('#file-name')).toContainText('trap.wasm')
  await page.fill('#batch-name', 'traps')
  await page.click('#batch-run')
  await expect(error).toBeHidden()
  await expect(page.locator('#batch')).toHaveAttribute('data-state', 'error', { timeout: 60_000 })
  await expect(page.locator('#batch-failed')).toHaveText('2 failed')
  await expect(page.locator('#batch-status')).toContainText('0/2 done')
  await expect(page.locator('#batch-results li[data-state="error"] .out')).toHaveText([/WasmTrapError/, /WasmTrapError/])
  await page.locator('#run-card').screenshot({ path: testInfo.outputPath('batch-failed.png') })
  expect(await page.evaluate(async () => window.wasmesh.peer!.listBatches())).toEqual([])

  // a long batch (20 s jobs: it cannot end between two steps of a loaded machine), discarded while it runs: gone from the page and from storage
  await page.selectOption('#demo', 'spin')
  await page.fill('#batch-inputs', '20000\n20000\n20000')
  await page.fill('#batch-name', 'discard-me')
  await page.click('#batch-run')
  await expect(page.locator('#batch')).toHaveAttribute('data-state', 'running')
  await expect(page.locator('#batch-discard')).toBeVisible()
  await page.click('#batch-discard')
  await expect(page.locator('#batch')).toBeHidden()
  await expect(page.locator('#batch-run')).toBeEnabled()
  await expect.poll(async () => page.evaluate(async () => window.wasmesh.peer!.listBatches())).toEqual([])
})
