/**
 * Test helpers: a local wasmesh network of real processes (bootstrap + page
 * server, Node peers, CLI requesters), each with its own state directory.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from '@playwright/test'
import { cliPath, repoRoot } from '../helpers/processes.ts'
import type { PageState } from '../../apps/page/state.ts'

declare global {
  interface Window { wasmesh: PageState }
}


export interface Network {
  home: string
  /** TCP multiaddr (for Node peers). */
  tcp: string
  /** WebSocket multiaddr (for browsers). */
  ws: string
  /** The page, served by the bootstrap node. */
  url: string
  spawnPeer: (slots?: number) => Promise<NodePeer>
  /** Runs `wasmesh run … --json` and resolves with its parsed output. */
  run: (module: string, input: string, extra?: string[]) => Promise<RunJson>
  stop: () => Promise<void>
}

export interface NodePeer { id: string, process: ChildProcess, stop: () => Promise<void> }

export interface RunJson {
  ok: boolean
  worker?: string
  output?: string
  durationMs?: number
  error?: { name: string, message: string }
  receipt?: { worker: string, exitCode: number, stats: { execMs: number, moduleCached: boolean } }
}

function start (args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [cliPath, ...args], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Resolves with the first match of `pattern` in the process's stdout+stderr. */
async function waitFor (child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 30_000): Promise<RegExpMatchArray> {
  let seen = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`${what}: no ${pattern} within ${timeoutMs} ms; output:\n${seen}`)) }, timeoutMs)
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString()
      const match = seen.match(pattern)
      if (match != null) { cleanup(); resolve(match) }
    }
    const onExit = (code: number | null): void => { cleanup(); reject(new Error(`${what} exited (${code}) before printing ${pattern}:\n${seen}`)) }
    const cleanup = (): void => {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.stderr?.off('data', onData)
      child.off('exit', onExit)
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.on('exit', onExit)
  })
}

async function kill (child: ChildProcess): Promise<void> {
  if (child.exitCode != null || child.signalCode != null) {
    return
  }
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

export async function startNetwork (): Promise<Network> {
  const home = await mkdtemp(join(tmpdir(), 'wasmesh-e2e-'))
  const env = { WASMESH_HOME: home, WASMESH_BOOTSTRAP: '' }
  const children: ChildProcess[] = []
  const bootstrap = start(['bootstrap', '--port', '0', '--http-port', '0', '--data', join(home, 'bootstrap')], env)
  children.push(bootstrap)
  let out = ''
  bootstrap.stdout?.on('data', (chunk: Buffer) => { out += chunk.toString() })
  let url: string | undefined
  try {
    [, url] = await waitFor(bootstrap, /web page: (http:\/\/\S+)/, 'bootstrap')
  } catch (err) {
    // the test's afterEach never sees this network: do not leave the process behind
    await kill(bootstrap)
    await rm(home, { recursive: true, force: true })
    throw err
  }
  const tcp = out.split('\n').find(line => /\/tcp\/\d+\/p2p\//.test(line))
  const ws = out.split('\n').find(line => line.includes('/ws/p2p/'))
  if (tcp == null || ws == null || url == null) {
    throw new Error(`bootstrap printed no addresses: ${out}`)
  }
  let peers = 0
  return {
    home,
    tcp,
    ws,
    url,
    spawnPeer: async (slots = 1) => {
      const dir = join(home, `peer-${++peers}`)
      const child = start(['peer', '--bootstrap', tcp, '--slots', String(slots), '--data', dir], env)
      children.push(child)
      const [, id] = await waitFor(child, /peer (\S+) contributing/, 'peer', 60_000)
      return { id: id as string, process: child, stop: async () => { await kill(child) } }
    },
    run: async (module, input, extra = []) => {
      const file = join(home, `input-${Date.now()}-${Math.random().toString(36).slice(2)}.txt`)
      await writeFile(file, input)
      const child = start(['run', module, '--input', file, '--bootstrap', tcp, '--json', ...extra], env)
      children.push(child)
      let stdout = ''
      let stderr = ''
      child.stdout?.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
      child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
      await new Promise(resolve => child.once('exit', resolve))
      const line = stdout.trim().split('\n').at(-1) ?? ''
      try {
        return JSON.parse(line) as RunJson
      } catch {
        throw new Error(`wasmesh run printed no JSON (exit ${child.exitCode}, signal ${child.signalCode}):\n${stdout}\n${stderr}`)
      }
    },
    stop: async () => {
      await Promise.all(children.map(kill))
      await rm(home, { recursive: true, force: true })
    }
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
export async function openTab (browser: Browser, net: Network, options: { query?: string, height?: number } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1200, height: options.height ?? 1000 } })
  const page = await context.newPage()
  page.on('pageerror', err => { console.log(`[page error] ${err.message}`) })
  await page.goto(`${net.url}${options.query ?? ''}`)
  return page
}
