/**
 * Jobs a person can steer from the page: elapsed time and Cancel while a job
 * runs (the worker's slot frees within a second), limits from the form, a
 * failure's signed receipt shown as verified, one colour per worker.
 */
import { contributing, expect, joined, knowsWorker, openTab, test } from './fixtures.ts'

test('Cancel stops the job on the worker: its slot frees within a second', async ({ browser, net }) => {
  const worker = await openTab(browser, net, { query: '?contribute=1' })
  const workerId = await contributing(worker)
  const requester = await openTab(browser, net)
  await joined(requester)
  await knowsWorker(requester, workerId)

  await requester.selectOption('#demo', 'spin')
  await requester.fill('#input', '60000') // about a minute of busy loop
  await requester.click('#run')
  await worker.waitForFunction(() => window.wasmesh.peer?.contribution?.running === 1, undefined, { timeout: 30_000, polling: 50 })
  await expect(requester.locator('#result-cancel')).toBeVisible()
  const before = Number.parseFloat(await requester.locator('#result-elapsed').textContent() ?? '')
  await requester.waitForTimeout(1200)
  const after = Number.parseFloat(await requester.locator('#result-elapsed').textContent() ?? '')
  expect(after, 'the elapsed time counts up while the job runs').toBeGreaterThan(before + 0.5)

  const freed = worker.evaluate(async () => new Promise<number>(resolve => {
    const poll = (): void => {
      if (window.wasmesh.peer?.contribution?.running === 0) {
        resolve(Date.now())
      } else {
        setTimeout(poll, 10)
      }
    }
    poll()
  }))
  const cancelledAt = await requester.evaluate(() => { document.getElementById('result-cancel')?.click(); return Date.now() })
  const freedAfterMs = await freed - cancelledAt
  console.log(`slot freed ${freedAfterMs} ms after Cancel`)
  expect(freedAfterMs).toBeLessThan(1000)
  await expect(requester.locator('#result')).toHaveAttribute('data-state', 'error')
  await expect(requester.locator('#result-title')).toHaveText('Cancelled')
  await expect(requester.locator('#result-cancel')).toBeHidden()
})

test('limits from the form reach the worker, and the failure comes back signed and verified', async ({ browser, net }) => {
  const worker = await net.startWorker()
  const tab = await openTab(browser, net)
  await joined(tab)
  await knowsWorker(tab, worker.peerId)
  await tab.selectOption('#demo', 'spin')
  await tab.fill('#input', '20000')
  await tab.click('#job-options summary')
  await tab.fill('#limit-time', '1')
  await tab.click('#run')
  await expect(tab.locator('#result')).toHaveAttribute('data-state', 'error', { timeout: 30_000 })
  await expect(tab.locator('#result-title')).toHaveText('Stopped at its time limit')
  await expect(tab.locator('#result-verified')).toHaveAttribute('data-verified', 'true')
  await expect(tab.locator('#result-receipt')).toContainText('signed by the worker')
  await expect(tab.locator('#result-worker')).toContainText(worker.peerId)
  const elapsed = Number.parseFloat(await tab.locator('#result-elapsed').textContent() ?? '')
  expect(elapsed, 'a 1 s limit ends a 20 s job early').toBeLessThan(10)
})

test('a mistake in the environment field is explained, and nothing runs', async ({ browser, net }) => {
  const tab = await openTab(browser, net)
  await joined(tab)
  await tab.click('#job-options summary')
  await tab.fill('#job-env', 'GOOD=1\nnot a variable')
  await tab.click('#run')
  await expect(tab.locator('#result-title')).toHaveText('Cannot run')
  await expect(tab.locator('#result-output')).toHaveText('Environment line 2 needs the form NAME=value.')
})

test('the Contribute card says what sharing costs, starts at half the cores, and pauses while hidden when asked', async ({ browser, net }) => {
  const tab = await openTab(browser, net)
  await joined(tab)
  const card = tab.locator('#contribute-card')
  await expect(card).toContainText('battery')
  await expect(card).toContainText('anyone on this network')
  await expect(card).toContainText('close this tab')
  const cores = await tab.evaluate(() => navigator.hardwareConcurrency)
  await expect(tab.locator('#contribute #threads')).toHaveValue(String(Math.max(1, Math.floor(cores / 2))))
  expect(await tab.evaluate(() => window.wasmesh.peer?.contribution)).toBeUndefined()

  await tab.locator('#contribute #toggle').check()
  await tab.waitForFunction(() => window.wasmesh.peer?.contribution != null)
  await tab.locator('#pause-hidden').check()
  await tab.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true })
    document.dispatchEvent(new Event('visibilitychange'))
  })
  await tab.waitForFunction(() => window.wasmesh.peer?.contribution == null)
  await expect(tab.locator('#contribute #status')).toHaveText('Paused while this tab is hidden.')
  await tab.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true })
    document.dispatchEvent(new Event('visibilitychange'))
  })
  await tab.waitForFunction(() => window.wasmesh.peer?.contribution != null)
})
