import { expect, joined, knowsWorker, openTab, test } from './fixtures.ts'

test('a batch started through the SDK survives a reload: the page resumes it from IndexedDB without rerunning finished jobs', async ({ browser, net }) => {
  const worker = await net.startWorker()
  const page = await openTab(browser, net)
  await joined(page)
  await knowsWorker(page, worker.peerId)

  // 20 spin jobs of ~150 ms on one slot: the reload lands in the middle
  await page.evaluate(() => {
    const state = window as unknown as { finished: string[] }
    state.finished = []
    void (async () => {
      const inputs = Array.from({ length: 20 }, (_, i) => String(150 + i))
      for await (const result of window.wasmesh.peer!.batch('reload-test', new URL('demo/spin.wasm', location.href), inputs, { concurrency: 2 })) {
        if (result.ok) {
          state.finished.push(result.result.job.toString())
        }
      }
    })()
  })
  await page.waitForFunction(() => (window as unknown as { finished: string[] }).finished.length >= 5, undefined, { timeout: 60_000 })
  const finishedBefore = await page.evaluate(() => [...(window as unknown as { finished: string[] }).finished])
  await page.reload()
  await joined(page)

  // the page lists the stored batch and resumes it by itself
  await page.waitForFunction(() => window.wasmesh.batch?.id === 'reload-test', undefined, { timeout: 30_000 })
  const resumedFrom = await page.evaluate(() => window.wasmesh.batch?.resumedFrom)
  expect(resumedFrom).toBeGreaterThanOrEqual(finishedBefore.length)
  await expect(page.locator('#batch-note')).toContainText(`Resumed after the reload: ${resumedFrom} finished job`)
  await page.waitForFunction(() => window.wasmesh.batch?.state !== 'running', undefined, { timeout: 60_000 })
  const batch = await page.evaluate(() => window.wasmesh.batch)
  expect(batch?.state, JSON.stringify(batch?.rows.filter(row => row.state !== 'ok'))).toBe('ok')
  expect(batch?.total).toBe(20)
  expect(batch?.done).toBe(20)
  for (const row of batch?.rows ?? []) {
    expect(row.output).toBe('done\n')
    expect(row.verified).toBe(true)
  }
  for (const job of finishedBefore) {
    expect(batch?.rows.find(row => row.job === job)?.resumed, `job ${job} ran again after the reload`).toBe(true)
  }
  expect(new Set(batch?.rows.map(row => row.job)).size).toBe(20)
  // a finished batch is forgotten: the next reload does not resume it
  expect(await page.evaluate(async () => window.wasmesh.peer!.listBatches())).toEqual([])
})
