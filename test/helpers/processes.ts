import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
export const cliPath = join(repoRoot, 'node', 'cli.ts')

/** A running `wasmesh` CLI process whose stdout lines can be awaited. */
export class CliProcess {
  readonly child: ChildProcess
  readonly lines: string[] = []
  readonly stderr: string[] = []
  private readonly waiters = new Set<() => void>()
  readonly exited: Promise<number | null>
  /** How the process ended, once it has. */
  exit?: { code: number | null, signal: NodeJS.Signals | null }
  readonly args: string[]

  constructor (args: string[], env: NodeJS.ProcessEnv) {
    this.args = args
    this.child = spawn(process.execPath, [cliPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    createInterface({ input: this.child.stdout! }).on('line', line => {
      this.lines.push(line)
      for (const waiter of this.waiters) {
        waiter()
      }
    })
    createInterface({ input: this.child.stderr! }).on('line', line => {
      this.stderr.push(line)
      for (const waiter of this.waiters) {
        waiter()
      }
    })
    this.exited = new Promise(resolve => this.child.on('exit', (code, signal) => {
      this.exit = { code, signal }
      resolve(code)
    }))
  }

  /** Resolves with the first line of `stream` matching `pattern`, waiting for it if need be. */
  async waitForLine (pattern: RegExp, timeoutMs = 30_000, stream: 'stdout' | 'stderr' = 'stdout'): Promise<string> {
    const found = (): string | undefined => (stream === 'stdout' ? this.lines : this.stderr).find(line => pattern.test(line))
    const existing = found()
    if (existing != null) {
      return existing
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; stdout: ${this.lines.join(' | ')}; stderr: ${this.stderr.join(' | ')}`))
      }, timeoutMs)
      const check = (): void => {
        const line = found()
        if (line != null) {
          clearTimeout(timer)
          this.waiters.delete(check)
          resolve(line)
        }
      }
      this.waiters.add(check)
    })
  }

  kill (signal: NodeJS.Signals = 'SIGTERM'): void {
    this.child.kill(signal)
  }
}

export interface TestWorker {
  /** Its data dir's name under the network's home: start it again under the same name to restart it. */
  name: string
  process: CliProcess
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

/** Runs a CLI command to completion. */
export async function runCli (args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<CliResult> {
  const child = spawn(process.execPath, [cliPath, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  child.stdin.end(stdin ?? '')
  const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
  return { code, stdout, stderr }
}

/**
 * A local wasmesh network of real processes: one bootstrap node and any
 * number of worker peers, each with its own data dir under a temp folder.
 */
export class TestNetwork {
  readonly home: string
  readonly env: NodeJS.ProcessEnv
  readonly processes: CliProcess[] = []
  bootstrapAddr = ''
  private stopping = false

  private constructor (home: string) {
    this.home = home
    this.env = { ...process.env, WASMESH_HOME: home, WASMESH_BOOTSTRAP: '' }
  }

  /** @param options.httpPort - also serve the page from the bootstrap node (0 picks a port) */
  static async start (options: { httpPort?: number } = {}): Promise<TestNetwork> {
    const network = new TestNetwork(await mkdtemp(join(tmpdir(), 'wasmesh-test-')))
    const http = options.httpPort == null ? [] : ['--http-port', String(options.httpPort)]
    const bootstrap = network.spawn(['bootstrap', '--port', '0', '--data', join(network.home, 'bootstrap'), ...http])
    network.bootstrapAddr = await bootstrap.waitForLine(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
    return network
  }

  spawn (args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
    const process = new CliProcess(args, { ...this.env, ...env })
    this.processes.push(process)
    return process
  }

  /** Starts a worker peer and resolves once it has joined, with its peer id. */
  async startWorker (name: string, slots = 1, env: NodeJS.ProcessEnv = {}): Promise<TestWorker> {
    const worker = this.spawn(['peer', '--bootstrap', this.bootstrapAddr, '--data', join(this.home, name), '--slots', String(slots)], env)
    const line = await worker.waitForLine(/^peer \S+ contributing/)
    return { name, process: worker, peerId: line.split(' ')[1] as string }
  }

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
      .map(p => `\n[${p.args[0]} process ended: code ${p.exit?.code}, signal ${p.exit?.signal}; stderr: ${p.stderr.slice(-15).join(' | ')}]`)
      .join('')
  }

  async stop (): Promise<void> {
    this.stopping = true
    for (const p of this.processes) {
      p.kill('SIGKILL')
    }
    await Promise.all(this.processes.map(async p => p.exited))
    await rm(this.home, { recursive: true, force: true })
  }
}
