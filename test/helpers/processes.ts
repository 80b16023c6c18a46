/**
 * The one helper that runs real wasmesh processes: a `ProcessNetwork` of a
 * bootstrap node (optionally serving the page) and worker peers, each an OS
 * process of the CLI with its own data dir, plus one-shot CLI commands.
 * Tests, the Playwright fixture and the benchmarks all use it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { builtCliPath, staleBuiltCli } from '../../scripts/built-cli.ts'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/**
 * The CLI every test process runs: the built bundle, as users install it
 * (a third of the start-up CPU of the TypeScript sources), refused when it
 * is older than the sources so a test never runs yesterday's code.
 */
export function cliPath (): string {
  checkedCli ??= (() => {
    const stale = staleBuiltCli()
    if (stale != null) {
      throw new Error(`the test processes run the built CLI, and ${stale}: run \`npm run build:lib\` (npm test does)`)
    }
    return builtCliPath
  })()
  return checkedCli
}
let checkedCli: string | undefined

/** A Node process whose output lines can be awaited. */
export class NodeProcess {
  readonly child: ChildProcess
  readonly args: string[]
  /** stdout, line by line. */
  readonly lines: string[] = []
  readonly stderr: string[] = []
  readonly exited: Promise<number | null>
  /** How the process ended, once it has. */
  exit?: { code: number | null, signal: NodeJS.Signals | null }
  private readonly waiters = new Set<() => void>()

  /** `args` are Node's: a script path first (the CLI by default, see `cli`). */
  constructor (args: string[], env: NodeJS.ProcessEnv, cwd = repoRoot) {
    this.args = args
    this.child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    const onLine = (into: string[]) => (line: string): void => {
      into.push(line)
      for (const waiter of this.waiters) {
        waiter()
      }
    }
    createInterface({ input: this.child.stdout! }).on('line', onLine(this.lines))
    createInterface({ input: this.child.stderr! }).on('line', onLine(this.stderr))
    this.exited = new Promise(resolve => this.child.on('exit', (code, signal) => {
      this.exit = { code, signal }
      for (const waiter of this.waiters) {
        waiter()
      }
      resolve(code)
    }))
  }

  /** A `wasmesh <args>` process. */
  static cli (args: string[], env: NodeJS.ProcessEnv): NodeProcess {
    return new NodeProcess([cliPath(), ...args], env)
  }

  get pid (): number {
    return this.child.pid as number
  }

  /**
   * Resolves with the first line of `stream` matching `pattern`, waiting for
   * it if need be; rejects if the process ends or the time runs out first.
   */
  async waitForLine (pattern: RegExp, timeoutMs = 30_000, stream: 'stdout' | 'stderr' = 'stdout'): Promise<string> {
    const source = stream === 'stdout' ? this.lines : this.stderr
    return new Promise((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer)
        this.waiters.delete(check)
      }
      const timer = setTimeout(() => {
        finish()
        reject(new Error(`no ${stream} line matching ${pattern} within ${timeoutMs} ms; ${this.describe()}`))
      }, timeoutMs)
      const check = (): void => {
        const line = source.find(l => pattern.test(l))
        if (line != null) {
          finish()
          resolve(line)
        } else if (this.exit != null) {
          finish()
          reject(new Error(`the process ended (code ${this.exit.code}, signal ${this.exit.signal}) before printing ${pattern}; ${this.describe()}`))
        }
      }
      this.waiters.add(check)
      check()
    })
  }

  kill (signal: NodeJS.Signals = 'SIGTERM'): void {
    this.child.kill(signal)
  }

  /** SIGTERM (so the process can stop cleanly or write a `--cpu-prof` profile), then SIGKILL after `graceMs`. */
  async stop (graceMs = 3000): Promise<void> {
    if (this.exit == null) {
      this.child.kill('SIGTERM')
      const timer = setTimeout(() => { this.child.kill('SIGKILL') }, graceMs)
      await this.exited
      clearTimeout(timer)
    }
  }

  /** The command and the end of its output, for error messages. */
  describe (): string {
    return `${this.args.slice(0, 3).join(' ')}: stdout ${this.lines.slice(-10).join(' | ')}; stderr ${this.stderr.slice(-15).join(' | ')}`
  }
}

/** Polls `condition` every `pollMs` until it holds or `timeoutMs` passed; resolves with whether it held. */
export async function eventually (condition: () => boolean | Promise<boolean>, timeoutMs: number, pollMs = 1000): Promise<boolean> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (await condition()) {
      return true
    }
    await new Promise(resolve => setTimeout(resolve, pollMs))
  }
  return condition()
}

/** VmRSS of a process in MiB, from /proc/<pid>/status. */
export async function rssMiB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
  if (match == null) {
    throw new Error(`no VmRSS for pid ${pid}`)
  }
  return Number(match[1]) / 1024
}

export interface TestWorker {
  /** Its data dir's name under the network's home: start it again under the same name to restart it. */
  name: string
  process: NodeProcess
  peerId: string
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** A failed command's output, for assertion messages. */
export function explain (result: CliResult): string {
  return `exit ${result.code}; stdout: ${result.stdout}; stderr: ${result.stderr}`
}

/** How long a one-shot CLI command may take before it is killed: a stuck command fails with what it printed. */
const COMMAND_TIMEOUT_MS = 120_000

/** Runs a CLI command to completion (killed after COMMAND_TIMEOUT_MS: then `code` is null). */
export async function runCli (args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<CliResult> {
  const child = spawn(process.execPath, [cliPath(), ...args], { cwd: repoRoot, env, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  child.stdin.end(stdin ?? '')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, COMMAND_TIMEOUT_MS)
  const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

export interface ProcessNetworkOptions {
  /** Serve the page from the bootstrap node on a free port: sets `wsAddr` and `pageUrl`. */
  page?: boolean
  /** Names the temp folder, for a human looking at /tmp. @default 'test' */
  label?: string
}

export interface WorkerOptions {
  /** @default 1 */
  slots?: number
  /** Extra environment, e.g. `WASMESH_TEST_FAULT`. */
  env?: NodeJS.ProcessEnv
  /** @default the CLI's: TCP and WebSockets on loopback */
  listen?: string[]
  /** More `wasmesh peer` flags, e.g. `['--storage', '64MiB']`. */
  args?: string[]
}

/**
 * A local wasmesh network of real processes: one bootstrap node and any
 * number of worker peers, each with its own data dir under a temp folder.
 */
export class ProcessNetwork {
  readonly home: string
  readonly env: NodeJS.ProcessEnv
  readonly processes: NodeProcess[] = []
  readonly workers: TestWorker[] = []
  bootstrap!: NodeProcess
  /** The bootstrap node's TCP multiaddr (for Node peers). */
  bootstrapAddr = ''
  /** With `page`: its WebSocket multiaddr (for browsers). */
  wsAddr = ''
  /** With `page`: the URL of the page it serves. */
  pageUrl = ''
  private stopping = false
  /** Numbers default worker names: taken when a start begins, so workers started at once get distinct data dirs. */
  private workersStarted = 0

  private constructor (home: string) {
    this.home = home
    this.env = { ...process.env, WASMESH_HOME: home, WASMESH_BOOTSTRAP: '', NODE_NO_WARNINGS: '1' }
  }

  static async start (options: ProcessNetworkOptions = {}): Promise<ProcessNetwork> {
    const network = new ProcessNetwork(await mkdtemp(join(tmpdir(), `wasmesh-${options.label ?? 'test'}-`)))
    try {
      const http = options.page === true ? ['--http-port', '0'] : []
      network.bootstrap = network.spawn(['bootstrap', '--port', '0', '--data', join(network.home, 'bootstrap'), ...http])
      network.bootstrapAddr = await network.bootstrap.waitForLine(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
      network.wsAddr = await network.bootstrap.waitForLine(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/ws\/p2p\//)
      if (options.page === true) {
        network.pageUrl = (await network.bootstrap.waitForLine(/^web page: http:\/\/\S+$/, 30_000, 'stderr')).slice('web page: '.length)
      }
    } catch (err) {
      // no caller holds this network yet: do not leave its process behind
      await network.stop()
      throw err
    }
    return network
  }

  /** A CLI process in this network's environment. */
  spawn (args: string[], env: NodeJS.ProcessEnv = {}): NodeProcess {
    const child = NodeProcess.cli(args, { ...this.env, ...env })
    this.processes.push(child)
    return child
  }

  /** Another Node script (a hostile peer, say) in this network's environment, stopped with the network. */
  spawnScript (script: string, args: string[], env: NodeJS.ProcessEnv = {}): NodeProcess {
    const child = new NodeProcess([script, ...args], { ...this.env, ...env })
    this.processes.push(child)
    return child
  }

  /** Starts a worker peer and resolves once it contributes, with its peer id. */
  async startWorker (name = `worker-${++this.workersStarted}`, options: WorkerOptions = {}): Promise<TestWorker> {
    const listen = options.listen != null ? ['--listen', ...options.listen] : []
    const child = this.spawn(['peer', '--bootstrap', this.bootstrapAddr, '--data', join(this.home, name), '--slots', String(options.slots ?? 1), ...listen, ...options.args ?? []], options.env)
    // generous: on a loaded 2-core machine, several workers starting at once each load libp2p and Helia
    const line = await child.waitForLine(/^peer \S+ contributing/, 120_000)
    const worker = { name, process: child, peerId: line.split(' ')[1] as string }
    this.workers.push(worker)
    return worker
  }

  /** Starts `count` workers at once. */
  async startWorkers (count: number, options: WorkerOptions = {}): Promise<TestWorker[]> {
    return Promise.all(Array.from({ length: count }, async () => this.startWorker(undefined, options)))
  }

  /** Runs a CLI command against this network to completion. */
  async run (args: string[], stdin?: string): Promise<CliResult> {
    const result = await runCli([...args, '--bootstrap', this.bootstrapAddr], this.env, stdin)
    if (result.code !== 0) {
      result.stderr += this.casualties()
    }
    return result
  }

  /** Network processes that ended without the test stopping them, with the end of their stderr: why a command failed. */
  casualties (): string {
    return this.processes.filter(p => p.exit != null && !this.stopping)
      .map(p => `\n[${p.args[1]} process ended: code ${p.exit?.code}, signal ${p.exit?.signal}; stderr: ${p.stderr.slice(-15).join(' | ')}]`)
      .join('')
  }

  async stop (): Promise<void> {
    this.stopping = true
    await Promise.all(this.processes.map(async p => { await p.stop(1000) }))
    await rm(this.home, { recursive: true, force: true })
  }
}
