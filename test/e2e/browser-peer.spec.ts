import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Page } from '@playwright/test'
import { contributing, expect, joined, knowsWorker, openTab, runJob, test } from './fixtures.ts'

async function runInPage (page: Page, demo: 'echo' | 'spin', input: string): Promise<void> {
  await page.selectOption('#demo', demo)
  await page.fill('#input', input)
  await page.click('#run')
  await expect(page.locator('#result')).toHaveAttribute('data-state', /ok|error/, { timeout: 60_000 })
}

test('a Node requester\'s job runs in a contributing browser tab', async ({ browser, net }, testInfo) => {
  const tab = await openTab(browser, net, { query: '?contribute=1' })
  const tabId = await contributing(tab)
  const timings = await tab.evaluate(() => window.wasmesh.timings)
  console.log(`page load → SDK loaded ${timings.sdkLoaded?.toFixed(0)} ms, → connected to bootstrap ${timings.connected?.toFixed(0)} ms, → relay+WebRTC address ${timings.reachable?.toFixed(0)} ms, → contributing ${timings.contributing?.toFixed(0)} ms`)
  const result = await runJob(net, 'build/wasm/echo.wasm', 'hello from node')
  expect(result.ok, JSON.stringify(result)).toBe(true)
  expect(result.output).toBe('HELLO FROM NODE')
  expect(result.worker).toBe(tabId)
  expect(result.receipt?.worker).toBe(tabId)
  await expect(tab.locator('#work-served')).toHaveText('1')
  await expect(tab.locator('#contribute #toggle')).toBeChecked()
  await tab.screenshot({ path: testInfo.outputPath('contributing-tab.png'), fullPage: true })
})

test('a contributing browser tab runs a C program over a mounted folder (its /out comes back verified), and a WASIX module through @wasmer/sdk', async ({ browser, net }) => {
  const tab = await openTab(browser, net, { query: '?contribute=1' })
  const tabId = await contributing(tab)
  const data = join(net.home, 'data')
  await mkdir(data, { recursive: true })
  await writeFile(join(data, 'in.txt'), 'from node to the tab\n')
  const outDir = join(net.home, 'results')
  const result = await runJob(net, 'test/fixtures/c/mounts.wasm', '', ['--mount', `/data=${data}`, '--mount', '/out', '--out-dir', outDir]) as RunJsonWithMounts
  expect(result.ok, JSON.stringify(result)).toBe(true)
  expect(result.worker).toBe(tabId)
  expect(result.output).toContain('/data has in.txt')
  expect(result.mounts?.[0]?.path).toBe('/out')
  expect(result.receipt?.mounts).toEqual(result.mounts)
  expect(await readFile(join(outDir, 'out', 'out.txt'), 'utf8')).toBe('FROM NODE TO THE TAB\n')

  const wasix = await runJob(net, 'build/wasm/wasix-echo.wasm', 'hello wasix tab')
  expect(wasix.ok, JSON.stringify(wasix)).toBe(true)
  expect(wasix.worker).toBe(tabId)
  expect(wasix.output).toBe('wasix: hello wasix tab')
})

type RunJsonWithMounts = Awaited<ReturnType<typeof runJob>> & { mounts?: Array<{ path: string, cid: string }>, receipt?: { mounts?: Array<{ path: string, cid: string }> } }

test('a browser requester\'s job runs on a Node worker', async ({ browser, net }, testInfo) => {
  const worker = await net.startWorker()
  const tab = await openTab(browser, net)
  await joined(tab)
  await knowsWorker(tab, worker.peerId)
  await expect(tab.locator(`#peers li[data-peer-id="${worker.peerId}"]`)).toBeVisible()
  await runInPage(tab, 'echo', 'hello from the browser')
  await expect(tab.locator('#result')).toHaveAttribute('data-state', 'ok')
  await expect(tab.locator('#result-output')).toHaveText('HELLO FROM THE BROWSER')
  await expect(tab.locator('#result-worker')).toContainText(worker.peerId)
  await expect(tab.locator('#result-verified')).toHaveAttribute('data-verified', 'true')
  await tab.screenshot({ path: testInfo.outputPath('browser-to-node.png'), fullPage: true })
})

test('browser to browser: tab A\'s job runs in tab B over a direct WebRTC connection', async ({ browser, net }, testInfo) => {
  const b = await openTab(browser, net, { query: '?contribute=1' })
  const bId = await contributing(b)
  const a = await openTab(browser, net)
  const aId = await joined(a)
  expect(aId).not.toBe(bId)
  await knowsWorker(a, bId)
  await runInPage(a, 'echo', 'tab to tab')
  await expect(a.locator('#result')).toHaveAttribute('data-state', 'ok')
  await expect(a.locator('#result-output')).toHaveText('TAB TO TAB')
  await expect(a.locator('#result-worker')).toContainText(bId)
  await expect(a.locator('#result-verified')).toHaveAttribute('data-verified', 'true')
  const connections = await a.evaluate(id => window.wasmesh.peer?.connections().filter(c => c.peerId === id), bId)
  const direct = connections?.filter(c => c.transport === 'webrtc' && c.direct) ?? []
  expect(direct.length, JSON.stringify(connections)).toBeGreaterThan(0)
  // a second job reuses the WebRTC connection: measure the round trip
  await runInPage(a, 'echo', 'again')
  await expect(a.locator('#result-output')).toHaveText('AGAIN')
  const rtt = await a.evaluate(() => window.wasmesh.lastResult?.durationMs)
  console.log(`browser→browser job round trip (warm): ${rtt?.toFixed(1)} ms`)
  await a.screenshot({ path: testInfo.outputPath('tab-a-requester.png'), fullPage: true })
  await b.screenshot({ path: testInfo.outputPath('tab-b-worker.png'), fullPage: true })
})

test('closing the contributing tab mid-job: the job completes on another peer', async ({ browser, net }, testInfo) => {
  const tab = await openTab(browser, net, { query: '?contribute=1' })
  const tabId = await contributing(tab)
  // ~8 s of work: long enough to close the tab while it runs
  const job = runJob(net, 'build/wasm/spin.wasm', '8000')
  await tab.waitForFunction(() => (window.wasmesh.peer?.contribution?.running ?? 0) > 0, undefined, { timeout: 30_000 })
  await expect(tab.locator('#work-running')).toHaveText('1')
  await tab.screenshot({ path: testInfo.outputPath('tab-running-spin.png'), fullPage: true })
  const worker = await net.startWorker()
  await tab.context().close()
  const result = await job
  expect(result.ok, JSON.stringify(result)).toBe(true)
  expect(result.output).toContain('done')
  expect(result.worker).toBe(worker.peerId)
  expect(result.worker).not.toBe(tabId)
})

test('reloading the page keeps its peer id and its compiled modules', async ({ browser, net }, testInfo) => {
  const tab = await openTab(browser, net, { query: '?contribute=1' })
  const id = await contributing(tab)
  const first = await runJob(net, 'build/wasm/echo.wasm', 'first')
  expect(first.ok, JSON.stringify(first)).toBe(true)
  expect(first.worker).toBe(id)
  expect(first.receipt?.stats.moduleCached).toBe(false)
  const cached = await tab.evaluate(() => window.wasmesh.peer?.localAdvert()?.cached.map(cid => cid.toString()) ?? [])
  expect(cached).toHaveLength(1)

  await tab.reload()
  expect(await contributing(tab)).toBe(id)
  expect(await tab.evaluate(() => window.wasmesh.peer?.localAdvert()?.cached.map(cid => cid.toString()) ?? [])).toEqual(cached)
  const second = await runJob(net, 'build/wasm/echo.wasm', 'second')
  expect(second.ok, JSON.stringify(second)).toBe(true)
  expect(second.worker).toBe(id)
  expect(second.output).toBe('SECOND')
  // compiled at start from the IndexedDB blocks: no fetch, no compile
  expect(second.receipt?.stats.moduleCached).toBe(true)
  await expect(tab.locator('#peer-id')).toHaveText(id)
  await tab.screenshot({ path: testInfo.outputPath('after-reload.png'), fullPage: true })
})

test('bad input gets a message in the page: not-wasm file, bootstrap down', async ({ browser, net }, testInfo) => {
  const tab = await openTab(browser, net)
  await joined(tab)
  await tab.selectOption('#demo', 'file')
  await tab.setInputFiles('#file', { name: 'notes.wasm', mimeType: 'application/wasm', buffer: Buffer.from('this is not wasm') })
  await expect(tab.locator('#file-name')).toContainText('notes.wasm')
  await tab.click('#run')
  await expect(tab.locator('#result')).toHaveAttribute('data-state', 'error')
  await expect(tab.locator('#result-output')).toContainText('not a WebAssembly module')
  await tab.screenshot({ path: testInfo.outputPath('not-wasm.png'), fullPage: true })

  const down = await openTab(browser, net, { query: `?bootstrap=${encodeURIComponent('/ip4/127.0.0.1/tcp/9/ws/p2p/12D3KooWH7ETWV6x22ZJjq6zhHu17iiSmw8fggGwf3bc3APbPDdt')}` })
  await expect(down.locator('#net-status')).toHaveAttribute('data-state', 'error', { timeout: 30_000 })
  await expect(down.locator('#banner')).toContainText('could not reach any bootstrap node')
  await down.screenshot({ path: testInfo.outputPath('bootstrap-down.png'), fullPage: true })
})
