/**
 * Front end as back end: a static page (build/page/functions.html, served by
 * the bootstrap node's plain file server) whose `fetch('fn/…')` is answered
 * through its Service Worker and its own peer by another peer on the mesh,
 * with no gateway process. The function was deployed by a one-shot CLI
 * process that has exited since.
 */
import { wasmPath } from '../../scripts/build-wasm.ts'
import { explain } from '../helpers/processes.ts'
import { expect, openTab, test } from './fixtures.ts'

declare global {
  interface Window { wasmeshFunctions: { ready?: boolean, error?: string, last?: { status: number, worker: string, verified: boolean, html: string } } }
}

test('the page\'s fetch(\'fn/…\') is served by another peer through the Service Worker, no gateway', async ({ browser, net }) => {
  const worker = await net.startWorker()
  const deployed = await net.run(['deploy', wasmPath('markdown'), '--name', 'markdown', '--json'])
  expect(deployed.code, explain(deployed)).toBe(0)
  const { address } = JSON.parse(deployed.stdout) as { address: string }
  expect(net.processes.some(p => p.args.includes('gateway'))).toBe(false)

  const page = await openTab(browser, net, { query: `functions.html?fn=${address}` })
  await page.waitForFunction(() => window.wasmeshFunctions?.last != null || window.wasmeshFunctions?.error != null, undefined, { timeout: 60_000 })
  const state = await page.evaluate(() => window.wasmeshFunctions)
  expect(state.error).toBeUndefined()
  expect(state.last?.status).toBe(200)
  expect(state.last?.worker).toBe(worker.peerId)
  expect(state.last?.verified).toBe(true)
  await expect(page.locator('#preview h1')).toHaveText('A page rendered on the mesh')
  await expect(page.locator('#preview strong')).toHaveText('another peer')

  // the page's own fetch, as any script of the site would call its API
  const answer = await page.evaluate(async (fn) => {
    const response = await fetch(`fn/${fn}/docs?page`, { method: 'POST', body: '## From fetch' })
    return { status: response.status, type: response.headers.get('content-type'), worker: response.headers.get('x-wasmesh-worker'), receipt: response.headers.get('x-wasmesh-receipt'), body: await response.text() }
  }, address)
  expect(answer.status).toBe(200)
  expect(answer.type).toMatch(/^text\/html/)
  expect(answer.worker).toBe(worker.peerId)
  expect(answer.receipt).not.toBeNull()
  expect(answer.body).toContain('<h2>From fetch</h2>')
  const missing = await page.evaluate(async (owner) => (await fetch(`fn/${owner}/nothing-here/`)).status, address.split('/')[0])
  expect(missing).toBe(404)
})
