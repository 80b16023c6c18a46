/**
 * The Playwright side of the test network: a `net` fixture (a ProcessNetwork
 * whose bootstrap node serves the page, fresh for each test and stopped after
 * it) and helpers that wait on the page's state.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test as base, type Browser, type Page } from '@playwright/test'
import { explain, ProcessNetwork } from '../helpers/processes.ts'
import type { PageState } from '../../apps/page/state.ts'

export { expect } from '@playwright/test'

declare global {
  interface Window { wasmesh: PageState }
}

export const test = base.extend<{ net: ProcessNetwork }>({
  // eslint-disable-next-line no-empty-pattern -- Playwright requires the destructuring even with no dependencies
  net: async ({}, use) => {
    const net = await ProcessNetwork.start({ page: true, label: 'e2e' })
    await use(net)
    await net.stop()
  }
})

/** What `wasmesh run --json` prints. */
export interface RunJson {
  ok: boolean
  worker?: string
  output?: string
  durationMs?: number
  error?: { name: string, message: string }
  receipt?: { worker: string, exitCode: number, stats: { execMs: number, moduleCached: boolean } }
}

/** Runs `wasmesh run <module> --input <file> --json` on the network and parses what it printed. */
export async function runJob (net: ProcessNetwork, module: string, input: string, extra: string[] = []): Promise<RunJson> {
  const file = join(net.home, `input-${Date.now()}-${Math.random().toString(36).slice(2)}.txt`)
  await writeFile(file, input)
  const result = await net.run(['run', module, '--input', file, '--json', ...extra])
  try {
    return JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '') as RunJson
  } catch {
    throw new Error(`wasmesh run printed no JSON: ${explain(result)}`)
  }
}

/** Waits until the page has joined and returns its peer id. */
export async function joined (page: Page): Promise<string> {
  await page.waitForFunction(() => window.wasmesh?.peer?.status === 'started' || window.wasmesh?.error != null, undefined, { timeout: 30_000 })
  const error = await page.evaluate(() => window.wasmesh.error)
  if (error != null) {
    throw new Error(`the page did not join: ${error}`)
  }
  return page.evaluate(() => window.wasmesh.peer?.id as string)
}

/** Waits until the page contributes and has a relayed WebRTC address that others can dial. */
export async function contributing (page: Page): Promise<string> {
  const id = await joined(page)
  await page.waitForFunction(() => window.wasmesh.peer?.contribution != null && window.wasmesh.peer.addresses().some(a => a.includes('/p2p-circuit/webrtc')), undefined, { timeout: 30_000 })
  return id
}

/** Waits until the page knows `peerId` advertises free capacity. */
export async function knowsWorker (page: Page, peerId: string): Promise<void> {
  await page.waitForFunction(id => window.wasmesh.peer?.peers().some(p => p.peerId === id && p.advert.slots.free > 0) === true, peerId, { timeout: 30_000 })
}

/**
 * Opens the page in a tab of its own browser context (its own IndexedDB, so
 * its own peer id), logging the page's errors. `query` is appended to the
 * page's URL; `height` sets the viewport for fuller screenshots.
 */
export async function openTab (browser: Browser, net: ProcessNetwork, options: { query?: string, height?: number } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1200, height: options.height ?? 1000 } })
  const page = await context.newPage()
  page.on('pageerror', err => { console.log(`[page error] ${err.message}`) })
  await page.goto(`${net.pageUrl}${options.query ?? ''}`)
  return page
}
