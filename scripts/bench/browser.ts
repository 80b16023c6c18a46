/**
 * Browser figures for scripts/bench/run.ts, measured in Chromium driven by
 * Playwright against a local network (a bootstrap process serving build/page,
 * as test/e2e/network.ts starts it): page load → contributing, tab → tab job
 * round trip over WebRTC against a raw libp2p echo on the same connection, and
 * the gzip size of the page's initial JS. docs/benchmarks.md says what each
 * figure means.
 */
import { execFile } from 'node:child_process'
import { readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'
import { chromium, type Browser, type BrowserContext, type Page } from '@playwright/test'
import type { Libp2p } from '@libp2p/interface'
import { ProcessNetwork, repoRoot } from '../../test/helpers/processes.ts'
import { systemChromium } from '../chromium.ts'
import { fromRuns, median, notMeasured, percentile, requester as startRequester, round, sleep, stopNetwork, withBaseline, type Metric } from './lib.ts'
import type { PageState } from '../../apps/page/state.ts'
import type * as BrowserSdk from '../../web/index.ts'
import type { Peer } from '../../protocol/peer.ts'

declare global {
  interface Window {
    wasmesh: PageState
    /** Set by the bench's init scripts (times in ms since navigation start). */
    wasmeshBench?: BenchProbe
  }
}

interface BenchProbe {
  /** The tab's libp2p node, for the raw echo baseline: not SDK API, so the probe takes it from libp2p's 'start' event. */
  libp2p?: Libp2p
  /** the first dispatch of each libp2p event in PROBED_EVENTS */
  events: Record<string, number>
  /** RTCDataChannel.send calls and the time spent in them (Chromium's send is synchronous) */
  sends: { count: number, ms: number }
}

export interface BrowserBenchOptions {
  quick: boolean
  log: (message: string) => void
}

const PAGE_DIR = join(repoRoot, 'build', 'page')
const ECHO_PROTOCOL = '/wasmesh-bench/echo/1.0.0'
/** As playwright.config.ts launches it. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** Wall-clock ms with sub-ms resolution, comparable between this process and the page (same machine clock). */
function epoch (): number {
  return performance.timeOrigin + performance.now()
}

export async function browserBench (options: BrowserBenchOptions): Promise<Record<string, Metric>> {
  const { quick, log } = options
  const config = quick
    ? { contributeRuns: 3, jobBatches: 3, jobsPerBatch: 50, echoPerBatch: 200, warmup: 20 }
    : { contributeRuns: 7, jobBatches: 5, jobsPerBatch: 200, echoPerBatch: 1000, warmup: 50 }
  const results: Record<string, Metric> = {}
  const build = await ensurePage(log)
  results.initial_js_gzip_kb = await bundleSize(build)

  const network = await ProcessNetwork.start({ label: 'bench-browser', page: true })
  const browser = await chromium.launch({ ...(systemChromium != null ? { executablePath: systemChromium } : {}), args: CHROMIUM_ARGS })
  try {
    const observer = await startRequester(network)
    try {
      results.page_to_contributing_ms = await pageToContributing(browser, network, observer, config.contributeRuns, log)
    } catch (err) {
      log(`page_to_contributing_ms failed: ${(err as Error).stack ?? String(err)}`)
      results.page_to_contributing_ms = notMeasured('ms', `failed: ${(err as Error).message}`, '≤ 1000 ms')
    }
    try {
      Object.assign(results, await tabToTab(browser, network, observer, config, log))
    } catch (err) {
      log(`browser_job_rtt_p50_ms failed: ${(err as Error).stack ?? String(err)}`)
      results.browser_job_rtt_p50_ms = notMeasured('ms', `failed: ${(err as Error).message}`, '≤ 3× browser_echo_rtt_p50_ms')
    }
  } finally {
    await browser.close()
    await stopNetwork(network)
  }
  return results
}

// ---------------------------------------------------------------------------
// build/page: rebuilt when missing or older than its sources

interface PageBuild { note?: string }

async function newestMtime (path: string): Promise<number> {
  const info = await stat(path).catch(() => undefined)
  if (info == null) {
    return 0
  }
  if (!info.isDirectory()) {
    return info.mtimeMs
  }
  let newest = info.mtimeMs
  for (const entry of await readdir(path, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      newest = Math.max(newest, (await stat(join(entry.parentPath, entry.name))).mtimeMs)
    }
  }
  return newest
}

async function ensurePage (log: (message: string) => void): Promise<PageBuild> {
  const built = (await stat(join(PAGE_DIR, 'index.html')).catch(() => undefined))?.mtimeMs
  // the page (apps/page) bundles web/ and protocol/, the demo modules, and whatever the lockfile and patches pin
  const sources = ['apps/page', 'web', 'protocol', 'vite.config.ts', 'package-lock.json', 'patches', 'build/wasm/echo.wasm', 'build/wasm/spin.wasm']
  const newest = Math.max(...await Promise.all(sources.map(async path => await newestMtime(join(repoRoot, path)))))
  if (built != null && built >= newest) {
    return {}
  }
  log(built == null ? 'build/page is missing: npm run build:web…' : 'build/page is older than its sources: npm run build:web…')
  try {
    await promisify(execFile)('npm', ['run', 'build:web'], { cwd: repoRoot, maxBuffer: 64 * 1024 * 1024 })
    return {}
  } catch (err) {
    if (built == null) {
      throw err
    }
    // others may be mid-edit: measure the last good build rather than nothing, and say so
    const message = (err as { stderr?: string }).stderr?.split('\n').filter(line => line.trim() !== '').slice(-3).join(' ') ?? String(err)
    log(`npm run build:web failed, measuring the existing (stale) build/page: ${message}`)
    return { note: `build/page is stale: npm run build:web failed (${message})` }
  }
}

// ---------------------------------------------------------------------------
// 3. initial JS: the chunks index.html loads before the page is usable

async function bundleSize (build: PageBuild): Promise<Metric> {
  const html = await readFile(join(PAGE_DIR, 'index.html'), 'utf8')
  const entries = [
    ...[...html.matchAll(/<script\b[^>]*\bsrc="([^"]+)"/g)].map(m => m[1] as string),
    ...[...html.matchAll(/<link\b[^>]*\brel="modulepreload"[^>]*\bhref="([^"]+)"/g)].map(m => m[1] as string)
  ]
  // static imports of those chunks load before they run, so they count too; dynamic import() does not
  const initial = new Set<string>()
  const queue = entries.map(src => join(PAGE_DIR, src))
  while (queue.length > 0) {
    const file = queue.shift() as string
    if (initial.has(file)) {
      continue
    }
    initial.add(file)
    const code = await readFile(file, 'utf8')
    for (const m of code.matchAll(/(?:^|[;}\n])\s*import\s*(?:[\w$*{}\s,]+?\s*from\s*)?["']([^"']+\.js)["']/g)) {
      queue.push(join(file, '..', m[1] as string))
    }
  }
  const gzipKiB = (bytes: Buffer): number => gzipSync(bytes, { level: 9 }).byteLength / 1024
  const chunks: Record<string, { rawKiB: number, gzipKiB: number }> = {}
  let total = 0
  for (const file of initial) {
    const bytes = await readFile(file)
    const gz = gzipKiB(bytes)
    total += gz
    chunks[file.slice(PAGE_DIR.length + 1)] = { rawKiB: round(bytes.byteLength / 1024), gzipKiB: round(gz) }
  }
  const lazy: Record<string, { rawKiB: number, gzipKiB: number }> = {}
  for (const name of await readdir(join(PAGE_DIR, 'assets'))) {
    const file = join(PAGE_DIR, 'assets', name)
    if (name.endsWith('.js') && !initial.has(file)) {
      const bytes = await readFile(file)
      lazy[`assets/${name}`] = { rawKiB: round(bytes.byteLength / 1024), gzipKiB: round(gzipKiB(bytes)) }
    }
  }
  const metric = fromRuns([total], 'KiB', {
    target: '≤ 250 KiB',
    detail: {
      initialChunks: chunks,
      lazyChunks: lazy,
      gzip: 'node:zlib level 9, per file',
      initialIs: 'the <script> and modulepreload chunks of build/page/index.html and their static imports; lazy chunks load by dynamic import() (the SDK chunk web-*.js when the page joins, job-worker-*.js per worker)'
    },
    ...(build.note != null ? { note: build.note } : {})
  })
  metric.met = total <= 250
  return metric
}

// ---------------------------------------------------------------------------
// 1. page load → a Node peer sees the tab's capacity advert

/**
 * Runs in the page before its scripts: records the first dispatch of a few
 * libp2p events (libp2p's emitters are EventTargets), RTCDataChannel.send
 * calls, and the libp2p node. The page records its own advert publishes.
 */
function pageProbe (events: string[]): void {
  const probe: BenchProbe = { events: {}, sends: { count: 0, ms: 0 } }
  window.wasmeshBench = probe
  const dispatch = EventTarget.prototype.dispatchEvent
  EventTarget.prototype.dispatchEvent = function (this: EventTarget, event: Event): boolean {
    if (events.includes(event.type)) {
      probe.events[event.type] ??= performance.now()
    }
    const detail = (event as Partial<CustomEvent>).detail as Partial<Libp2p> | undefined
    if (event.type === 'start' && typeof detail?.handle === 'function' && typeof detail.getConnections === 'function') {
      probe.libp2p ??= detail as Libp2p
    }
    return dispatch.call(this, event)
  }
  if (typeof RTCDataChannel !== 'undefined') {
    const send = RTCDataChannel.prototype.send as (this: RTCDataChannel, data: unknown) => void
    RTCDataChannel.prototype.send = function (this: RTCDataChannel, data: unknown): void {
      const t = performance.now()
      try {
        send.call(this, data)
      } finally {
        probe.sends.count++
        probe.sends.ms += performance.now() - t
      }
    } as RTCDataChannel['send']
  }
}

/** libp2p events whose first dispatch the probe records. */
const PROBED_EVENTS = ['relay:created-reservation']

async function pageToContributing (browser: Browser, network: ProcessNetwork, observer: Peer, runs: number, log: (message: string) => void): Promise<Metric> {
  // when the observer first saw each peer advertise slots (epoch ms)
  const seen = new Map<string, number>()
  const onPeers = (): void => {
    const now = epoch()
    for (const p of observer.peers()) {
      if (p.advert.slots.total > 0 && !seen.has(p.peerId)) {
        seen.set(p.peerId, now)
      }
    }
  }
  observer.addEventListener('peers', onPeers)
  const totals: number[] = []
  const phases: Array<Record<string, number>> = []
  try {
    for (let r = 0; r < runs; r++) {
      const context = await browser.newContext()
      try {
        await context.addInitScript(pageProbe, PROBED_EVENTS)
        const page = await context.newPage()
        const before = new Set(seen.keys())
        const gotoAt = epoch()
        await page.goto(`${network.pageUrl}?contribute=1`)
        const id = await waitFor(() => [...seen.keys()].find(key => !before.has(key)), 30_000, 'the observer to see the tab\'s advert')
        const observedAt = seen.get(id) as number
        const tab = await page.evaluate(() => ({
          id: window.wasmesh.peer?.id,
          timeOrigin: performance.timeOrigin,
          timings: window.wasmesh.timings,
          responseEnd: (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined)?.responseEnd,
          adverts: window.wasmesh.adverts,
          reservationAt: window.wasmeshBench?.events['relay:created-reservation']
        }))
        if (tab.id !== id) {
          throw new Error(`the observer saw ${id}, but the tab is ${String(tab.id)}`)
        }
        const t = tab.timings
        const fromNav = observedAt - tab.timeOrigin
        // the advert that announced the contribution: the first publish at or after `contributing`
        const advertAt = tab.adverts.find(at => at >= (t.contributing ?? Infinity) - 1)
        totals.push(observedAt - gotoAt)
        const phase: Record<string, number> = {
          gotoToNavigationStart: tab.timeOrigin - gotoAt,
          htmlLoaded: tab.responseEnd ?? NaN,
          sdkLoaded: t.sdkLoaded ?? NaN,
          connected: t.connected ?? NaN,
          reservationCreated: tab.reservationAt ?? NaN,
          reachable: t.reachable ?? NaN,
          contributing: t.contributing ?? NaN,
          advertPublished: advertAt ?? NaN,
          observerSawAdvert: fromNav
        }
        phases.push(phase)
        log(`page → contributing run ${r + 1}: ${round(observedAt - gotoAt)} ms (${Object.entries(phase).map(([k, v]) => `${k} ${round(v)}`).join(', ')})`)
      } finally {
        await context.close()
      }
    }
  } finally {
    observer.removeEventListener('peers', onPeers)
  }
  const medianOf = (key: string): number => round(median(phases.map(p => p[key] as number).filter(Number.isFinite)))
  const metric = fromRuns(totals, 'ms', {
    target: '≤ 1000 ms',
    detail: {
      from: 'page.goto(?contribute=1) in a fresh browser context (empty IndexedDB and HTTP cache)',
      to: 'an in-process Node peer on the same bootstrap node receives the tab\'s capacity advert (its \'peers\' event)',
      phasesMsSinceNavigationStartP50: {
        htmlLoaded: medianOf('htmlLoaded'),
        sdkLoaded: medianOf('sdkLoaded'),
        connected: medianOf('connected'),
        reservationCreated: medianOf('reservationCreated'),
        reachable: medianOf('reachable'),
        contributing: medianOf('contributing'),
        advertPublished: medianOf('advertPublished'),
        observerSawAdvert: medianOf('observerSawAdvert')
      },
      gotoToNavigationStartMsP50: medianOf('gotoToNavigationStart'),
      stepsMsP50: {
        loadSdkChunk: round(median(phases.map(p => (p.sdkLoaded as number) - (p.htmlLoaded as number)))),
        joinBootstrap: round(median(phases.map(p => (p.connected as number) - (p.sdkLoaded as number)))),
        relayReservation: round(median(phases.map(p => (p.reservationCreated as number) - (p.connected as number)).filter(Number.isFinite))),
        // the page learns its relayed address from libp2p's 'self:peer:update', which AddressManager debounces by 1 s
        reservationToSelfPeerUpdate: round(median(phases.map(p => (p.reachable as number) - (p.reservationCreated as number)).filter(Number.isFinite))),
        startContributing: round(median(phases.map(p => (p.contributing as number) - (p.reachable as number)))),
        advertWait: round(median(phases.map(p => (p.advertPublished as number) - (p.contributing as number)).filter(Number.isFinite))),
        gossipToObserver: round(median(phases.map(p => (p.observerSawAdvert as number) - (p.advertPublished as number)).filter(Number.isFinite)))
      },
      samples: totals.map(round)
    }
  })
  metric.met = (metric.value ?? Infinity) <= 1000
  return metric
}

async function waitFor<T> (probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const until = Date.now() + timeoutMs
  while (true) {
    const value = probe()
    if (value !== undefined) {
      return value
    }
    if (Date.now() > until) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    }
    await sleep(2)
  }
}

// ---------------------------------------------------------------------------
// 2. tab A → tab B job over WebRTC, against a raw echo on the same connection

interface JobConfig { jobBatches: number, jobsPerBatch: number, echoPerBatch: number, warmup: number }

async function openTab (browser: Browser, url: string): Promise<{ context: BrowserContext, page: Page }> {
  const context = await browser.newContext()
  await context.addInitScript(pageProbe, PROBED_EVENTS)
  const page = await context.newPage()
  page.on('pageerror', err => { console.error(`[page error] ${err.message}`) })
  await page.goto(url)
  await page.waitForFunction(() => window.wasmesh?.peer?.status === 'started' || window.wasmesh?.error != null, undefined, { timeout: 30_000 })
  const error = await page.evaluate(() => window.wasmesh.error)
  if (error != null) {
    throw new Error(`the page did not join: ${error}`)
  }
  return { context, page }
}

/**
 * Tab B without the page's UI: a blank same-origin document (config.json, which
 * gets the same isolation headers) that imports the page's SDK chunk and
 * contributes. Shows what the page's per-job rendering costs the worker tab.
 */
async function openBareWorker (browser: Browser, network: ProcessNetwork): Promise<{ context: BrowserContext, page: Page } | undefined> {
  const chunk = (await readdir(join(PAGE_DIR, 'assets'))).find(name => /^web-[\w-]+\.js$/.test(name))
  if (chunk == null) {
    return undefined
  }
  const context = await browser.newContext()
  await context.addInitScript(pageProbe, PROBED_EVENTS)
  const page = await context.newPage()
  await page.goto(`${network.pageUrl}config.json`)
  const ok = await page.evaluate(async ({ path, ws }) => {
    const sdk = await import(path) as Partial<typeof BrowserSdk>
    if (sdk.createPeer == null) {
      return false
    }
    const peer = await sdk.createPeer({ bootstrap: [ws], contribute: { threads: 1 } })
    window.wasmesh = { peer, timings: {}, adverts: [] }
    return true
  }, { path: `./assets/${chunk}`, ws: network.wsAddr })
  if (!ok) {
    await context.close()
    return undefined
  }
  return { context, page }
}

interface JobRuns { p50: number[], p99: number[], execMs: number, sendsPerJob: { requester: number, worker: number }, sendMsPerJob: { requester: number, worker: number } }

/** Sequential tiny echo jobs from tab A, `batches` × `count`; checks every one ran on `workerId`. */
async function jobRuns (a: Page, b: Page, workerId: string, batches: number, count: number, warmup: number): Promise<JobRuns> {
  const run = async (n: number): Promise<{ times: number[], execMs: number[], workers: string[] }> => await a.evaluate(async count => {
    const peer = window.wasmesh.peer as NonNullable<PageState['peer']>
    const module = await peer.add(new Uint8Array(await (await fetch('demo/echo.wasm')).arrayBuffer()))
    const times: number[] = []
    const execMs: number[] = []
    const seen: string[] = []
    for (let i = 0; i < count; i++) {
      const t = performance.now()
      const result = await peer.run({ module, input: 'hi' })
      times.push(performance.now() - t)
      execMs.push(result.receipt.stats.execMs)
      seen.push(result.worker)
    }
    return { times, execMs, workers: [...new Set(seen)] }
  }, n)
  const sends = async (page: Page): Promise<{ count: number, ms: number }> => await page.evaluate(() => ({ ...window.wasmeshBench?.sends ?? { count: NaN, ms: NaN } }))
  const check = (workers: string[]): void => {
    if (workers.length !== 1 || workers[0] !== workerId) {
      throw new Error(`tab A's jobs went to ${workers.join(', ')}, not only to tab B ${workerId}`)
    }
  }
  check((await run(warmup)).workers)
  const [a0, b0] = [await sends(a), await sends(b)]
  const p50: number[] = []
  const p99: number[] = []
  const execMs: number[] = []
  for (let r = 0; r < batches; r++) {
    const batch = await run(count)
    check(batch.workers)
    p50.push(percentile(batch.times, 50))
    p99.push(percentile(batch.times, 99))
    execMs.push(...batch.execMs)
  }
  const [a1, b1] = [await sends(a), await sends(b)]
  const jobs = batches * count
  return {
    p50,
    p99,
    execMs: median(execMs),
    sendsPerJob: { requester: round((a1.count - a0.count) / jobs), worker: round((b1.count - b0.count) / jobs) },
    sendMsPerJob: { requester: round((a1.ms - a0.ms) / jobs), worker: round((b1.ms - b0.ms) / jobs) }
  }
}

async function directWebRtc (a: Page, bId: string): Promise<string[]> {
  const connections = await a.evaluate(id => window.wasmesh.peer?.connections().filter(c => c.peerId === id) ?? [], bId)
  const direct = connections.filter(c => c.transport === 'webrtc' && c.direct)
  if (direct.length === 0) {
    throw new Error(`no direct WebRTC connection from tab A to tab B: ${JSON.stringify(connections)}`)
  }
  return direct.map(c => c.remoteAddr)
}

async function knows (a: Page, observer: Peer, bId: string): Promise<void> {
  await waitFor(() => observer.peers().find(p => p.peerId === bId), 30_000, 'tab B to advertise')
  await a.waitForFunction(id => window.wasmesh.peer?.peers().some(p => p.peerId === id && p.advert.slots.free > 0) === true, bId, { timeout: 30_000 })
}

async function tabToTab (browser: Browser, network: ProcessNetwork, observer: Peer, config: JobConfig, log: (message: string) => void): Promise<Record<string, Metric>> {
  const a = await openTab(browser, network.pageUrl)
  try {
    const b = await openTab(browser, `${network.pageUrl}?contribute=1`)
    let jobs: JobRuns
    let connection: string[]
    let echo: { p50: number[], p99: number[], connection: string, sendsPerRoundTrip: number }
    let profile: Record<string, unknown>
    try {
      const bId = await b.page.evaluate(() => window.wasmesh.peer?.id as string)
      await knows(a.page, observer, bId)
      jobs = await jobRuns(a.page, b.page, bId, config.jobBatches, config.jobsPerBatch, config.warmup)
      connection = await directWebRtc(a.page, bId)
      log(`tab → tab job p50 per batch: ${jobs.p50.map(round).join(', ')} ms`)
      echo = await rawEcho(a.page, b.page, bId, config)
      log(`tab → tab raw echo p50 per batch: ${echo.p50.map(round).join(', ')} ms`)
      profile = await profileJobs(a.page, b.page, bId, config.jobsPerBatch)
    } finally {
      await b.context.close()
    }

    // the same jobs to a worker tab without the page's UI
    let bare: { jobs: JobRuns, echo: Awaited<ReturnType<typeof rawEcho>> } | undefined
    const plain = await openBareWorker(browser, network)
    if (plain != null) {
      try {
        const id = await plain.page.evaluate(() => window.wasmesh.peer?.id as string)
        await knows(a.page, observer, id)
        const batches = Math.min(config.jobBatches, 3)
        const bareJobs = await jobRuns(a.page, plain.page, id, batches, config.jobsPerBatch, config.warmup)
        await directWebRtc(a.page, id)
        bare = { jobs: bareJobs, echo: await rawEcho(a.page, plain.page, id, { ...config, jobBatches: batches }) }
        log(`tab → SDK-only tab: job p50 per batch ${bare.jobs.p50.map(round).join(', ')} ms, raw echo ${bare.echo.p50.map(round).join(', ')} ms`)
      } finally {
        await plain.context.close()
      }
    }

    const echoMetric = fromRuns(echo.p50, 'ms', {
      detail: {
        what: `${ECHO_PROTOCOL} handler on tab B's libp2p, one long-lived stream from tab A over the job's WebRTC connection, 32-byte messages, sequential`,
        samplesPerRun: config.echoPerBatch,
        p99: round(median(echo.p99)),
        dataChannelSendsPerRoundTrip: echo.sendsPerRoundTrip,
        connection: echo.connection
      }
    })
    const job = withBaseline(fromRuns(jobs.p50, 'ms', {
      target: '≤ 3× browser_echo_rtt_p50_ms',
      detail: {
        what: 'tab A peer.run({ module: echo.wasm CID, input: \'hi\' }) → tab B (?contribute=1) over a direct WebRTC connection, sequential, warm, receipt verified',
        samplesPerRun: config.jobsPerBatch,
        p99: round(median(jobs.p99)),
        workerExecMsP50: round(jobs.execMs),
        dataChannelSendsPerJob: jobs.sendsPerJob,
        msInDataChannelSendPerJob: jobs.sendMsPerJob,
        workerTabWithoutUi: bare == null
          ? 'not measured (no SDK chunk web-*.js in build/page/assets)'
          : {
              what: 'tab B is the SDK chunk imported into a blank same-origin document (no page UI), contributing 1 thread; the same jobs and raw echo',
              jobP50: round(median(bare.jobs.p50)),
              echoP50: round(median(bare.echo.p50)),
              ratio: round(median(bare.jobs.p50) / median(bare.echo.p50)),
              runs: bare.jobs.p50.length,
              jobSpread: round(percentile(bare.jobs.p50, 90) - percentile(bare.jobs.p50, 10)),
              msInDataChannelSendPerJob: bare.jobs.sendMsPerJob
            },
        cpuProfileMsPerJob: profile,
        connection,
        baselineIs: 'browser_echo_rtt_p50_ms'
      }
    }), echoMetric, x => (x.ratio ?? Infinity) <= 3)
    return { browser_echo_rtt_p50_ms: echoMetric, browser_job_rtt_p50_ms: job }
  } finally {
    await a.context.close()
  }
}

/** A raw libp2p echo: a handler on tab B's libp2p, dialled from tab A over the existing direct WebRTC connection. */
async function rawEcho (a: Page, b: Page, bId: string, config: JobConfig): Promise<{ p50: number[], p99: number[], connection: string, sendsPerRoundTrip: number }> {
  await b.evaluate(async protocol => {
    const libp2p = window.wasmeshBench?.libp2p
    if (libp2p == null) {
      throw new Error('no libp2p in tab B')
    }
    await libp2p.handle(protocol, async stream => {
      for await (const chunk of stream) {
        if (!stream.send(chunk)) {
          await stream.onDrain()
        }
      }
      await stream.close()
    })
  }, ECHO_PROTOCOL)
  return await a.evaluate(async ({ protocol, id, batches, count, warmup }) => {
    const libp2p = window.wasmeshBench?.libp2p
    const connection = libp2p?.getConnections().find(c => c.remotePeer.toString() === id && c.remoteAddr.toString().includes('/webrtc') && c.limits == null && c.status === 'open')
    if (connection == null) {
      throw new Error('no direct WebRTC connection to tab B')
    }
    const stream = await connection.newStream(protocol)
    const incoming = stream[Symbol.asyncIterator]()
    const message = new Uint8Array(32).fill(0x61)
    const roundTrip = async (): Promise<void> => {
      stream.send(message)
      let got = 0
      while (got < message.byteLength) {
        const next = await incoming.next()
        if (next.done === true) {
          throw new Error('the echo stream ended')
        }
        got += next.value.byteLength
      }
    }
    for (let i = 0; i < warmup; i++) {
      await roundTrip()
    }
    const pct = (values: number[], p: number): number => {
      const sorted = [...values].sort((x, y) => x - y)
      const rank = (p / 100) * (sorted.length - 1)
      const low = sorted[Math.floor(rank)] as number
      return low + ((sorted[Math.ceil(rank)] as number) - low) * (rank - Math.floor(rank))
    }
    const sendsBefore = window.wasmeshBench?.sends.count ?? NaN
    const p50: number[] = []
    const p99: number[] = []
    for (let r = 0; r < batches; r++) {
      const times: number[] = []
      for (let i = 0; i < count; i++) {
        const t = performance.now()
        await roundTrip()
        times.push(performance.now() - t)
      }
      p50.push(pct(times, 50))
      p99.push(pct(times, 99))
    }
    const sendsPerRoundTrip = ((window.wasmeshBench?.sends.count ?? NaN) - sendsBefore) / (batches * count)
    await stream.close()
    return { p50, p99, connection: connection.remoteAddr.toString(), sendsPerRoundTrip }
  }, { protocol: ECHO_PROTOCOL, id: bId, batches: config.jobBatches, count: config.echoPerBatch, warmup: config.warmup })
}

interface CpuProfile {
  nodes: Array<{ id: number, callFrame: { functionName: string, url: string } }>
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

/**
 * CPU profiles (Chrome DevTools protocol) of both tabs' main threads during one
 * extra batch of jobs, as self time per job: idle, V8 buckets, native calls by
 * name (send, postMessage, sign…; the bundle is minified, natives keep their
 * names) and JS by chunk (index-*.js is the page UI, web-*.js the SDK).
 */
async function profileJobs (a: Page, b: Page, workerId: string, count: number): Promise<Record<string, unknown>> {
  const sessions = await Promise.all([a, b].map(async page => await page.context().newCDPSession(page)))
  for (const session of sessions) {
    await session.send('Profiler.enable')
    await session.send('Profiler.setSamplingInterval', { interval: 100 })
    await session.send('Profiler.start')
  }
  const workers = await a.evaluate(async count => {
    const peer = window.wasmesh.peer as NonNullable<PageState['peer']>
    const module = await peer.add(new Uint8Array(await (await fetch('demo/echo.wasm')).arrayBuffer()))
    const seen = new Set<string>()
    for (let i = 0; i < count; i++) {
      seen.add((await peer.run({ module, input: 'hi' })).worker)
    }
    return [...seen]
  }, count)
  if (workers.length !== 1 || workers[0] !== workerId) {
    throw new Error(`profiled jobs went to ${workers.join(', ')}`)
  }
  const summary: Record<string, unknown> = {}
  for (const [name, session] of [['requesterTabA', sessions[0]], ['workerTabB', sessions[1]]] as const) {
    const { profile } = await session!.send('Profiler.stop') as unknown as { profile: CpuProfile }
    await session!.detach()
    const frames = new Map(profile.nodes.map(node => [node.id, node.callFrame]))
    const buckets = new Map<string, number>()
    profile.samples.forEach((id, i) => {
      const frame = frames.get(id)
      const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000
      const file = frame?.url.split('/').pop() ?? ''
      const key = frame == null ? '?' : frame.url === '' ? (frame.functionName === '' ? '(anonymous native)' : frame.functionName) : `js ${file.replace(/-[\w-]{8}\.js$/, '-*.js')}`
      buckets.set(key, (buckets.get(key) ?? 0) + ms)
    })
    const top = [...buckets].sort((x, y) => y[1] - x[1]).slice(0, 12)
    summary[name] = { profiledMsPerJob: round((profile.endTime - profile.startTime) / 1000 / count), ...Object.fromEntries(top.map(([key, ms]) => [key, round(ms / count)])) }
  }
  return summary
}
