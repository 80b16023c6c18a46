/**
 * Two tabs that each serve the other's jobs while their own run on the
 * other: every job must come back. Reproduces a reported bug (a tab serving
 * a job while its own job ran elsewhere sometimes never got the reply) in
 * about 1 run of 4 on a 2-core machine: both tabs dial each other at once,
 * end up with two relayed and two WebRTC connections to each other, and now
 * and then lose them all mid-batch ("WorkerLostError: … disconnected"),
 * after which the other tab stays unusable for longer than the batch waits.
 * Opt-in until that is fixed: WASMESH_REPRO_CROSSED=1 npx playwright test test/e2e/page-crossed.spec.ts
 * It prints each tab's links, adverts seen, jobs served and retries.
 */
import { contributing, expect, knowsWorker, openTab, test } from './fixtures.ts'

test.skip(process.env.WASMESH_REPRO_CROSSED == null, 'a known intermittent bug: set WASMESH_REPRO_CROSSED=1 to reproduce it')

test('two contributing tabs run batches on each other at once, and both finish', async ({ browser, net }) => {
  const a = await openTab(browser, net, { query: '?contribute=1' })
  const b = await openTab(browser, net, { query: '?contribute=1' })
  const [aId, bId] = await Promise.all([contributing(a), contributing(b)])
  await knowsWorker(a, bId)
  await knowsWorker(b, aId)
  const run = async (page: typeof a, tag: string): Promise<void> => {
    await page.selectOption('#demo', 'echo')
    await page.check('#mode-batch', { force: true })
    await page.fill('#batch-inputs', Array.from({ length: 12 }, (_, i) => `${tag}-${i}`).join('\n'))
    await page.click('#batch-run')
  }
  for (const page of [a, b]) {
    await page.evaluate(() => {
      const w = window as unknown as { log: string[] }
      w.log = []
      const t0 = performance.now()
      const at = (): string => `${((performance.now() - t0) / 1000).toFixed(1)}s`
      const peer = window.wasmesh.peer
      peer?.addEventListener('job:retry', e => { w.log.push(`${at()} retry ${e.detail.worker?.slice(-4) ?? ''} ${e.detail.error?.name ?? ''}: ${e.detail.error?.message ?? ''}`) })
      peer?.addEventListener('connections', () => { w.log.push(`${at()} links ${JSON.stringify(peer.connections().map(c => `${c.peerId.slice(-4)}:${c.transport}`))}`) })
      peer?.addEventListener('peers', () => { w.log.push(`${at()} workers ${JSON.stringify(peer.peers().map(p => `${p.peerId.slice(-4)}:${p.advert.slots.free}/${p.advert.slots.total}`))}`) })
      peer?.addEventListener('work:start', e => { w.log.push(`${at()} serving ${e.detail.job.slice(-4)} for ${e.detail.requester.slice(-4)}`) })
      peer?.addEventListener('work:end', e => { w.log.push(`${at()} served ${e.detail.job.slice(-4)} ${e.detail.signed != null ? 'receipt' : 'no receipt'}`) })
    })
  }
  await Promise.all([run(a, 'a'), run(b, 'b')])
  for (const page of [a, b]) {
    await expect(page.locator('#batch')).toHaveAttribute('data-state', /ok|error/, { timeout: 60_000 })
  }
  for (const page of [a, b]) {
    const batch = await page.evaluate(() => window.wasmesh.batch)
    console.log(`${await page.evaluate(() => window.wasmesh.peer?.id.slice(-4))}: ${await page.locator('#batch-status').textContent()}\n  ${(await page.evaluate(() => (window as unknown as { log: string[] }).log)).join('\n  ')}`)
    expect(batch?.state, JSON.stringify(batch?.rows.filter(row => row.state !== 'ok'))).toBe('ok')
  }
})
