/**
 * The published package, used as a user would: `npm pack` this repo, install
 * the tarball into a copy of apps/example-dapp in a temp folder with no npm
 * flag that changes what is installed, then
 * (a) the install is light: no react-native, no @libp2p/webrtc (inlined with
 * its patch), no install script of ours; on an old Node the CLI and the SDK
 * say in one line which Node they need,
 * (b) `npx wasmesh start` runs the local network, serving the page from the
 * package, and `npx wasmesh app`/`run` run jobs on it; a Node script imports
 * 'wasmesh' and runs a job on a peer started by the installed CLI (whose
 * bootstrap node then reports the worker at /healthz and /metrics),
 * (c) the app is typechecked and built with Vite, its bundle holds no Node
 * built-in, and Chromium runs a job from it on a Node worker and drives
 * `<wasmesh-contribute>`; then a job from a second tab runs in that
 * contributing tab over a direct WebRTC connection.
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { chromium, type Browser, type Page } from '@playwright/test'
import playwrightConfig from '../../playwright.config.ts'
import { servePage, type PageServer } from '../../apps/cli/page-server.ts'
import { NodeProcess, ProcessNetwork, repoRoot, type TestWorker } from '../helpers/processes.ts'
import type { ContributeElement } from '../../web/contribute-element.ts'

interface Run { code: number | null, stdout: string, stderr: string }

/** Runs a command to completion; rejects with its output unless it exits 0. */
async function exec (command: string, args: string[], options: { cwd: string, env?: NodeJS.ProcessEnv, timeoutMs?: number }): Promise<Run> {
  const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const timeoutMs = options.timeoutMs ?? 120_000
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, timeoutMs)
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  clearTimeout(timer)
  if (code !== 0) {
    throw new Error(`${command} ${args.join(' ')} (in ${options.cwd}) ${timedOut ? `took over ${timeoutMs} ms` : `exited ${code}`}\n${stdout}\n${stderr}`)
  }
  return { code, stdout, stderr }
}

/** npm as the test runner's npm when run by `npm test`, else the one on PATH. */
async function npm (args: string[], cwd: string, timeoutMs = 240_000): Promise<Run> {
  const cli = process.env.npm_execpath
  return cli != null && cli.endsWith('.js') ? exec(process.execPath, [cli, ...args], { cwd, timeoutMs }) : exec('npm', args, { cwd, timeoutMs })
}

const NODE_CHECK = `
import { readFile } from 'node:fs/promises'
import { createPeer, verifyReceipt } from 'wasmesh'

const [bootstrap, modulePath] = process.argv.slice(2)
const peer = await createPeer({ bootstrap: [bootstrap] })
try {
  const result = await peer.run({ module: await readFile(modulePath), input: 'hello from node', signal: AbortSignal.timeout(60_000) })
  const { receipt } = await verifyReceipt(result.receipts[0].signed, { job: result.job, worker: result.worker })
  console.log(JSON.stringify({ entry: import.meta.resolve('wasmesh'), output: result.text(), worker: result.worker, signedBy: receipt.worker, exitCode: receipt.exitCode }))
} finally {
  await peer.stop()
}
`

// Only the Node build has dataDir and startBootstrap: this compiles only if the `node` condition picked its types.
const NODE_TYPES = `
import { createPeer, startBootstrap, type CreatePeerOptions } from 'wasmesh'

const options: CreatePeerOptions = { dataDir: 'state', bootstrap: [] }
export const peer = createPeer(options)
export const bootstrap = startBootstrap
`

const NODE_TSCONFIG = {
  compilerOptions: { target: 'ES2023', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2024'], types: [], strict: true, skipLibCheck: true, noEmit: true },
  files: ['node-types.ts']
}

let work: string
let app: string
let network: ProcessNetwork
let worker: TestWorker
let wsAddr: string
let server: PageServer | undefined
let browser: Browser | undefined
/** The dApp tab that switched contributing on (the browser test below), the worker of the tab-to-tab test after it. */
let contributingTab: Page | undefined

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wasmesh-package-'))
  app = join(work, 'app')
  // the app as committed, without whatever a local `npm install` left in it
  await cp(join(repoRoot, 'apps', 'example-dapp'), app, {
    recursive: true,
    filter: source => !/[/\\](node_modules|dist)$|\.tgz$/.test(source)
  })
  // prepack builds dist/ first, and its script banners come before the JSON
  const { stdout } = await npm(['pack', '--json', '--pack-destination', work], repoRoot)
  const packed = JSON.parse(stdout.slice(stdout.indexOf('[\n'))) as Array<{ filename: string, files: Array<{ path: string }> }>
  const { filename, files } = packed[0]!
  const paths = files.map(f => f.path)
  for (const expected of ['dist/node/index.js', 'dist/node/index.d.ts', 'dist/node/job-worker.js', 'dist/web/index.js', 'dist/web/index.d.ts', 'dist/web/job-worker.js',
    'dist/web/contribute-element.d.ts', 'dist/apps/cli/bin.js', 'dist/apps/cli/main.js', 'build/page/index.html', 'build/wasm/echo.wasm', 'build/wasm/montecarlo.wasm']) {
    assert.ok(paths.includes(expected), `the package lacks ${expected}`)
  }
  // generated API docs (docs/api/), sources and tests do not belong in the package
  const strays = paths.filter(p => /^(docs\/api|test|apps\/page|protocol|node|web)\//.test(p) || /\.ts$/.test(p) && !p.endsWith('.d.ts'))
  assert.deepEqual(strays, [], `the package holds files it should not: ${strays.join(', ')}`)
  await cp(join(work, filename), join(app, 'wasmesh.tgz'))
  // as a user installs: the app's .npmrc only turns the lockfile off; the flags change where
  // packages come from (the cache, when it holds them all) and what is printed, not what is installed
  // the network runs the built CLI, which `npm pack` (prepack) rebuilt above: started only now, and beside the install
  const networkReady = (async () => {
    network = await ProcessNetwork.start()
    wsAddr = network.wsAddr
    worker = await network.startWorker('worker', { slots: 2 })
  })()
  // awaited below; until then a failure must not surface as an unhandled rejection
  networkReady.catch(() => {})
  await npm(['install', '--prefer-offline', '--no-audit', '--no-fund'], app)
  await writeFile(join(app, 'node-check.mjs'), NODE_CHECK)
  await writeFile(join(app, 'node-types.ts'), NODE_TYPES)
  await writeFile(join(app, 'tsconfig.node.json'), JSON.stringify(NODE_TSCONFIG))
  await networkReady
}, { timeout: 360_000 })

after(async () => {
  await browser?.close()
  await server?.close()
  await network?.stop()
  if (work != null) {
    await rm(work, { recursive: true, force: true })
  }
})

test('the install is light: no react-native, no @libp2p/webrtc, no install script; the WebRTC fix travels inlined', async () => {
  const modules = join(app, 'node_modules')
  for (const heavy of ['react-native', 'react-native-webrtc', '@libp2p/webrtc', 'helia', '@helia/libp2p', '@libp2p/kad-dht']) {
    assert.equal(existsSync(join(modules, heavy)), false, `node_modules holds ${heavy}`)
  }
  const installed = JSON.parse(await readFile(join(modules, 'wasmesh', 'package.json'), 'utf8')) as { scripts?: Record<string, string> }
  const installScripts = ['preinstall', 'install', 'postinstall', 'prepare'].filter(name => installed.scripts?.[name] != null)
  assert.deepEqual(installScripts, [], 'scripts npm runs (or warns about) when a project installs wasmesh')
  // the patched dialer of patches/@libp2p+webrtc+6.0.33.patch, in both builds (in Node, a chunk loaded on the first dial to a tab)
  for (const build of ['node', 'web']) {
    const folder = join(modules, 'wasmesh', 'dist', build)
    const scripts = (await readdir(folder)).filter(f => f.endsWith('.js'))
    const patched = []
    for (const file of scripts) {
      if (/if \(channel\.readyState === "connecting"\)/.test(await readFile(join(folder, file), 'utf8'))) {
        patched.push(file)
      }
    }
    assert.equal(patched.length, 1, `dist/${build}/ should hold the WebRTC init-channel fix once; found in: ${patched.join(', ')}`)
  }
})

/** A Node older than the package needs, if this machine has one (Debian's is 20), else undefined. */
function oldNode (): string | undefined {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    if (existsSync(candidate)) {
      const version = spawnSync(candidate, ['--version'], { encoding: 'utf8' }).stdout.trim()
      if (/^v(1\d|2[01])\./.test(version)) {
        return candidate
      }
    }
  }
  return undefined
}

test('an old Node gets one line saying which Node is needed, from the CLI and the SDK', { skip: oldNode() == null ? 'no Node older than 22 on this machine' : false }, () => {
  const node = oldNode()!
  const bin = join(app, 'node_modules', '.bin', 'wasmesh')
  const cli = spawnSync(node, [bin, '--help'], { cwd: app, encoding: 'utf8' })
  assert.equal(cli.status, 1)
  assert.equal(cli.stdout, '')
  assert.match(cli.stderr, /^wasmesh needs Node\.js >= 22\.19\.0 \(this is 2\d\.[\d.]+\): install Node 24 LTS[^\n]*\n$/)
  const sdk = spawnSync(node, ['--input-type=module', '-e', "import('wasmesh').then(() => console.log('loaded'), err => console.log(err.message))"], { cwd: app, encoding: 'utf8' })
  assert.match(sdk.stdout, /^wasmesh needs Node\.js >= 22\.19\.0 /)
})

test('npx wasmesh start runs the local network from the installed package: its page is served, and npx wasmesh app runs a job on it', async () => {
  // what a user types in their project: npx runs node_modules/.bin/wasmesh. The long-running
  // `start` is run as npx runs it (npx's own process would outlive a stop as the network's parent)
  const bin = join(app, 'node_modules', '.bin', 'wasmesh')
  const npxCli = process.env.npm_execpath?.replace(/npm-cli\.js$/, 'npx-cli.js')
  const wasmesh = npxCli != null && existsSync(npxCli) ? [npxCli, 'wasmesh'] : [bin]
  // its own home: `start` writes the local network's addresses there, and the commands after it find them without --bootstrap
  const env = { ...process.env, WASMESH_HOME: join(work, 'start-home'), WASMESH_BOOTSTRAP: '' }
  const start = new NodeProcess([bin, 'start', '--port', '0', '--http-port', '0', '--slots', '1'], env, app)
  try {
    const url = (await start.waitForLine(/^web page: http:\/\/\S+/, 120_000)).slice('web page: '.length).split(/\s+/)[0] as string
    const page = await fetch(url)
    assert.equal(page.status, 200)
    assert.match(await page.text(), /<title>[^<]*wasmesh/i)
    const workerId = (await start.waitForLine(/^worker peer \S+ with 1 slots$/)).split(' ')[2]
    const pi = await exec(process.execPath, [...wasmesh, 'app', 'montecarlo', '--samples', '200000', '--json'], { cwd: app, env })
    const answer = JSON.parse(pi.stdout.trim().split('\n').at(-1) ?? '') as { ok: boolean, estimate: number }
    assert.equal(answer.ok, true, pi.stdout)
    assert.ok(Math.abs(answer.estimate - Math.PI) < 0.05, `pi ≈ ${answer.estimate}`)
    await writeFile(join(work, 'npx-input.txt'), 'from npx')
    const echo = await exec(process.execPath, [...wasmesh, 'run', join(app, 'public', 'echo.wasm'), '--input', join(work, 'npx-input.txt'), '--json'], { cwd: app, env })
    const ran = JSON.parse(echo.stdout) as { output: string, worker: string }
    assert.deepEqual({ output: ran.output, worker: ran.worker }, { output: 'FROM NPX', worker: workerId }, 'the job ran on the worker `start` runs')
  } finally {
    await start.stop()
  }
})

test('the browser build\'s worker URLs name files the package ships, and the functions Service Worker is one file', async () => {
  const web = join(app, 'node_modules', 'wasmesh', 'dist', 'web')
  for (const file of (await readdir(web)).filter(f => f.endsWith('.js'))) {
    const source = await readFile(join(web, file), 'utf8')
    for (const [, url] of source.matchAll(/new URL\('([^']+)', import\.meta\.url\)/g)) {
      assert.ok(existsSync(join(web, url!)), `dist/web/${file} loads ${url}, which the package does not contain`)
    }
  }
  // a dApp serves the functions Service Worker at its root as one file (docs/functions.md)
  const serviceWorker = await readFile(join(web, 'functions-sw.js'), 'utf8')
  assert.doesNotMatch(serviceWorker, /^import /m, 'functions-sw.js must not import other files')
})

test('types: a bundler project gets the browser build\'s, a NodeNext project the Node build\'s', async () => {
  const tsc = join(app, 'node_modules', 'typescript', 'bin', 'tsc')
  await Promise.all([
    exec(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app }),
    exec(process.execPath, [tsc, '-p', 'tsconfig.node.json'], { cwd: app })
  ])
})

test('the Vite bundle holds no Node built-in and carries the job worker', async () => {
  const build = await exec(process.execPath, [join(app, 'node_modules', 'vite', 'bin', 'vite.js'), 'build'], { cwd: app })
  const viteLog = build.stdout + build.stderr
  assert.doesNotMatch(viteLog, /externalized for browser compatibility/, viteLog)
  const assets = join(app, 'dist', 'assets')
  const scripts = (await readdir(assets)).filter(f => f.endsWith('.js'))
  assert.ok(scripts.some(f => f.startsWith('job-worker')), `no job-worker chunk among ${scripts.join(', ')}`)
  for (const file of scripts) {
    const source = await readFile(join(assets, file), 'utf8')
    assert.doesNotMatch(source, /(?:from\s*|import\s*\(\s*|require\s*\(\s*)["']node:/, `${file} imports a node: module`)
    assert.doesNotMatch(source, /__vite-browser-external/, `${file} holds a Node built-in stubbed out by Vite`)
  }
})

test('installed peers: import { createPeer } from \'wasmesh\' runs a job on a worker the installed CLI started, with a verified receipt; the bootstrap node answers /healthz and /metrics', async () => {
  const bin = join(app, 'node_modules', 'wasmesh', 'dist', 'apps', 'cli', 'bin.js')
  const env = { ...process.env, WASMESH_HOME: join(work, 'installed-home'), WASMESH_BOOTSTRAP: '' }
  const bootstrap = new NodeProcess([bin, 'bootstrap', '--port', '0', '--data', join(work, 'installed-bootstrap'), '--http-port', '0', '--metrics'], env)
  let peer: NodeProcess | undefined
  try {
    const bootstrapAddr = await bootstrap.waitForLine(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
    const pageUrl = (await bootstrap.waitForLine(/^web page: http:\/\/\S+$/, 30_000, 'stderr')).slice('web page: '.length)
    peer = new NodeProcess([bin, 'peer', '--bootstrap', bootstrapAddr, '--data', join(work, 'installed-peer')], env)
    const peerId = (await peer.waitForLine(/^peer \S+ contributing/, 120_000)).split(' ')[1]
    const { stdout } = await exec(process.execPath, ['node-check.mjs', bootstrapAddr, join(app, 'public', 'echo.wasm')], { cwd: app, env, timeoutMs: 90_000 })
    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as { entry: string, output: string, worker: string, signedBy: string, exitCode: number }
    assert.match(result.entry, /node_modules\/wasmesh\/dist\/node\/index\.js$/)
    assert.equal(result.output, 'HELLO FROM NODE')
    assert.equal(result.worker, peerId)
    assert.equal(result.signedBy, peerId)
    assert.equal(result.exitCode, 0)

    // what an operator watches: the worker the job ran on is known to the bootstrap node by now
    const health = await (await fetch(new URL('/healthz', pageUrl))).json() as { status: string, peerId: string, connections: number, workers: number }
    assert.deepEqual({ status: health.status, peerId: health.peerId, workers: health.workers }, { status: 'ok', peerId: bootstrapAddr.split('/p2p/')[1], workers: 1 })
    assert.ok(health.connections >= 1, `connections: ${health.connections}`)
    const metrics = await (await fetch(new URL('/metrics', pageUrl))).text()
    assert.match(metrics, /^wasmesh_capacity_workers 1$/m)
    assert.match(metrics, /^libp2p_connection_manager_connections\{[^}]*\} \d+$/m)
    assert.match(metrics, /^process_resident_memory_bytes \d+/m)
  } finally {
    await peer?.stop()
    await bootstrap.stop()
  }
})

/** The element's state and its peer's contribution, read in the page. */
async function contribution (page: Page): Promise<{ state: string, threads: number, contributing?: number }> {
  return page.locator('wasmesh-contribute').evaluate(el => {
    const element = el as ContributeElement
    return { state: element.state, threads: element.threads, contributing: element.peer?.contribution?.threads }
  })
}

async function waitForState (page: Page, state: string): Promise<void> {
  await page.waitForFunction(s => (document.querySelector('wasmesh-contribute') as ContributeElement | null)?.state === s, state, { timeout: 30_000 })
}

test('browser: the example dApp runs a job on the Node worker and drives <wasmesh-contribute>', async () => {
  // built by the test above
  server = await servePage({ port: 0, root: join(app, 'dist'), bootstrap: () => [wsAddr] })
  const launch = playwrightConfig.use?.launchOptions ?? {}
  browser = await chromium.launch({ ...launch, headless: true })
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', err => { errors.push(err.message) })
  // a battery the test can unplug: headless Chromium reports a charging one
  await page.addInitScript(() => {
    const battery = Object.assign(new EventTarget(), { charging: true })
    Object.defineProperty(navigator, 'getBattery', { value: async () => battery })
    Object.assign(window, { testBattery: battery })
  })
  await page.goto(server.url)
  await page.waitForSelector('#status[data-state=connected]', { timeout: 30_000 }).catch(async (err: Error) => {
    throw new Error(`${err.message}; status: ${await page.locator('#status').textContent()}; page errors: ${errors.join(' | ')}`)
  })
  assert.equal(await page.evaluate(() => crossOriginIsolated), true)
  await page.waitForFunction(() => document.getElementById('workers')?.textContent !== '0', undefined, { timeout: 30_000 })

  await page.fill('#input', 'hello from the browser')
  await page.click('#run')
  await page.waitForSelector('#result[data-state=ok], #result[data-state=error]', { timeout: 60_000 })
  assert.equal(await page.locator('#output').textContent(), 'HELLO FROM THE BROWSER')
  assert.equal(await page.locator('#worker').textContent(), worker.peerId)
  assert.equal(await page.locator('#verified').getAttribute('data-verified'), 'true')
  assert.deepEqual(errors, [])

  // consent first: nothing runs until the visitor flips the labelled switch
  assert.deepEqual(await contribution(page), { state: 'off', threads: await page.evaluate(() => Math.max(1, Math.floor(navigator.hardwareConcurrency / 2))), contributing: undefined })
  const toggle = page.getByRole('switch', { name: 'Let this page run jobs for others' })
  assert.equal(await toggle.isChecked(), false)
  await toggle.check()
  await waitForState(page, 'on')
  const on = await contribution(page)
  assert.equal(on.contributing, on.threads)
  assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem('wasmesh-contribute') ?? 'null')?.enabled), true)

  // pause-on-battery, then pause-when-hidden
  await page.evaluate(() => {
    const battery = (window as unknown as { testBattery: EventTarget & { charging: boolean } }).testBattery
    battery.charging = false
    battery.dispatchEvent(new Event('chargingchange'))
  })
  await waitForState(page, 'paused')
  await page.waitForFunction(() => (document.querySelector('wasmesh-contribute') as ContributeElement).peer?.contribution == null)
  await page.evaluate(() => {
    const battery = (window as unknown as { testBattery: EventTarget & { charging: boolean } }).testBattery
    battery.charging = true
    battery.dispatchEvent(new Event('chargingchange'))
  })
  await waitForState(page, 'on')
  const setHidden = async (hidden: boolean): Promise<void> => {
    await page.evaluate(h => {
      Object.defineProperty(document, 'visibilityState', { value: h ? 'hidden' : 'visible', configurable: true })
      document.dispatchEvent(new Event('visibilitychange'))
    }, hidden)
  }
  await setHidden(true)
  await waitForState(page, 'paused')
  assert.equal((await contribution(page)).contributing, undefined)
  await setHidden(false)
  await waitForState(page, 'on')

  // the choice is remembered: after a reload the page contributes without asking again
  await page.reload()
  await page.waitForSelector('#status[data-state=connected]', { timeout: 30_000 })
  await waitForState(page, 'on')
  assert.equal(await page.getByRole('switch', { name: 'Let this page run jobs for others' }).isChecked(), true)
  contributingTab = page
})

test('browser to browser: a job from one tab of the installed dApp runs in another over a direct WebRTC connection (the WebRTC fix travels in the package)', async () => {
  assert.ok(browser != null && server != null && contributingTab != null, 'needs the contributing tab of the test above')
  const workerTabId = (await contributingTab.locator('#status:not([part])').textContent() ?? '').replace(/^Connected as /, '')
  // the tab is then the only worker: the job cannot land anywhere else
  await worker.process.stop()
  const context = await browser.newContext() // its own IndexedDB, so its own peer id
  const requester = await context.newPage()
  const errors: string[] = []
  requester.on('pageerror', err => { errors.push(err.message) })
  await requester.goto(server.url)
  await requester.waitForSelector('#status[data-state=connected]', { timeout: 30_000 })
  await requester.fill('#input', 'tab to tab')
  await requester.click('#run')
  await requester.waitForSelector('#result[data-state=ok], #result[data-state=error]', { timeout: 90_000 })
  assert.equal(await requester.locator('#output').textContent(), 'TAB TO TAB')
  assert.equal(await requester.locator('#worker').textContent(), workerTabId)
  assert.equal(await requester.locator('#verified').getAttribute('data-verified'), 'true')
  const links = await requester.locator('wasmesh-contribute').evaluate((el, id) => (el as ContributeElement).peer?.connections().filter(c => c.peerId === id).map(c => c.transport) ?? [], workerTabId)
  assert.ok(links.includes('webrtc'), `the tabs are linked by ${links.join(', ') || 'nothing'}, not a direct WebRTC connection`)
  assert.deepEqual(errors, [])
  await context.close()
})
