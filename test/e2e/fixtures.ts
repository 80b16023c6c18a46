/**
 * The Playwright side of the test network: a `net` fixture (a ProcessNetwork
 * whose bootstrap node serves the page, fresh for each test and stopped after
 * it) and helpers that wait on the page's state.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect, test as base, type Browser, type BrowserContext, type Page, type TestInfo } from '@playwright/test'
import { explain, ProcessNetwork } from '../helpers/processes.ts'
import type { PageState } from '../../apps/page/state.ts'

export { expect }

declare global {
  interface Window { wasmesh: PageState }
}

/**
 * Tabs opened by `openTab` in the running test. The browser outlives the
 * test, and so would they: a suite's earlier tabs kept their peers running
 * (and contributing) through every later test, which ran up to 4× slower.
 */
const openContexts = new Set<BrowserContext>()

export const test = base.extend<{ net: ProcessNetwork }>({
  // eslint-disable-next-line no-empty-pattern -- Playwright requires the destructuring even with no dependencies
  net: async ({}, use) => {
    const net = await ProcessNetwork.start({ page: true, label: 'e2e' })
    await use(net)
    await Promise.all([...openContexts].map(async context => { await context.close() }))
    openContexts.clear()
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

/** A screen to open the page on. */
export interface Device {
  name?: string
  width: number
  height: number
  touch?: boolean
}

/** The two screens the page's screenshots are taken at: a phone (touch) and a laptop. */
export const DEVICES: Device[] = [
  { name: 'phone', width: 390, height: 844, touch: true },
  { name: 'desktop', width: 1280, height: 800 }
]

/** Asserts that the page does not scroll sideways, naming the widest elements when it does. */
export async function expectNoHorizontalOverflow (page: Page): Promise<void> {
  const overflow = await page.evaluate(() => {
    const width = document.documentElement.clientWidth
    const culprits = [...document.querySelectorAll<HTMLElement>('body *')]
      .filter(node => node.getBoundingClientRect().right > width + 0.5 && node.offsetParent != null)
      .slice(0, 5)
      .map(node => `${node.tagName.toLowerCase()}${node.id !== '' ? `#${node.id}` : ''}.${node.className}`)
    return { scroll: document.documentElement.scrollWidth, width, culprits }
  })
  expect(overflow.scroll, `the page scrolls sideways at ${overflow.width} px: ${overflow.culprits.join(', ')}`).toBeLessThanOrEqual(overflow.width)
}

/** Takes a full-page screenshot into the test's artifacts, after checking the page does not overflow. */
export async function snapshot (page: Page, testInfo: TestInfo, name: string): Promise<void> {
  await expectNoHorizontalOverflow(page)
  await page.screenshot({ path: testInfo.outputPath(`${name}.png`), fullPage: true })
}

/**
 * Opens the page in a tab of its own browser context (its own IndexedDB, so
 * its own peer id), logging the page's errors. `query` is appended to the
 * page's URL; `height` sets the viewport for fuller screenshots.
 */
export async function openTab (browser: Browser, net: ProcessNetwork, options: { query?: string, height?: number, device?: Device, before?: (page: Page) => Promise<void> } = {}): Promise<Page> {
  const device = options.device ?? { width: 1200, height: options.height ?? 1000 }
  const context = await browser.newContext({ viewport: { width: device.width, height: device.height }, ...(device.touch === true ? { hasTouch: true, isMobile: true, deviceScaleFactor: 2 } : {}) })
  openContexts.add(context)
  context.on('close', () => { openContexts.delete(context) })
  const page = await context.newPage()
  await options.before?.(page)
  page.on('pageerror', err => { console.log(`[page error] ${err.message}`) })
  await page.goto(`${net.pageUrl}${options.query ?? ''}`)
  return page
}
