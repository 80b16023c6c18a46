import { expect, test } from '@playwright/test'
import { joined, knowsWorker, startNetwork, type Network } from './network.ts'

let net: Network

test.beforeEach(async () => {
  net = await startNetwork()
})

test.afterEach(async () => {
  await net?.stop()
})

test('a page reload mid-batch resumes the batch from IndexedDB without rerunning finished jobs', async ({ browser }) => {
  const worker = await net.spawnPeer(1)
  const page = await (await browser.newContext()).newPage()
  await page.goto(net.url)
  await joined(page)
  await knowsWorker(page, worker.id)

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

  const stored = await page.evaluate(async () => window.wasmesh.peer!.listBatches())
  expect(stored).toHaveLength(1)
  expect(stored[0]?.total).toBe(20)
  expect(stored[0]?.done).toBeGreaterThanOrEqual(finishedBefore.length)

  await knowsWorker(page, worker.id)
  const resumed = await page.evaluate(async () => {
    const results: Array<{ index: number, ok: boolean, job?: string, resumed?: boolean, output?: string }> = []
    for await (const result of window.wasmesh.peer!.resume('reload-test')) {
      results.push(result.ok
        ? { index: result.index, ok: true, job: result.result.job.toString(), resumed: result.result.resumed, output: result.result.text() }
        : { index: result.index, ok: false, output: result.error.message })
    }
    return results
  })
  expect(resumed).toHaveLength(20)
  for (const result of resumed) {
    expect(result.ok, result.output).toBe(true)
    expect(result.output).toBe('done\n')
  }
  for (const job of finishedBefore) {
    expect(resumed.find(result => result.job === job)?.resumed, `job ${job} ran again after the reload`).toBe(true)
  }
  expect(new Set(resumed.map(result => result.index)).size).toBe(20)
})
