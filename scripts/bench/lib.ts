/**
 * Helpers for scripts/bench/run.ts: statistics, machine description, CLI
 * processes (bootstrap and worker peers as separate OS processes) and the
 * WAT modules the bench builds itself.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { cpus, availableParallelism, totalmem, release, platform, arch } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import wabt from 'wabt'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
export const cliPath = join(repoRoot, 'node', 'cli.ts')

/** One figure of the results JSON. */
export interface Metric {
  value: number | null
  unit: string
  /** Independent repetitions the median was taken over. */
  runs: number
  /** p90 − p10 of the repetitions (linear interpolation; with ≤ 5 runs that is close to max − min). */
  spread: number | null
  baseline?: number | null
  ratio?: number | null
  target?: string
  /** Whether the target is met: undefined when the metric has none or was not measured. */
  met?: boolean
  note?: string
  /** Extra breakdowns (samples per run, timing splits, curves). */
  detail?: Record<string, unknown>
  curve?: Array<Record<string, number | null>>
}

export interface Machine {
  cpu: string
  cores: number
  memoryGiB: number
  node: string
  os: string
}

export function machine (): Machine {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30 * 10) / 10,
    node: process.version,
    os: `${platform()} ${release()} ${arch()}`
  }
}

/** The p-th percentile (0–100) of `values`, linearly interpolated. */
export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) {
    return NaN
  }
  const sorted = [...values].sort((a, b) => a - b)
  const rank = (p / 100) * (sorted.length - 1)
  const low = Math.floor(rank)
  const high = Math.ceil(rank)
  const a = sorted[low] as number
  const b = sorted[high] as number
  return a + (b - a) * (rank - low)
}

export function median (values: readonly number[]): number {
  return percentile(values, 50)
}

/** p90 − p10 of `values`. */
export function spread (values: readonly number[]): number {
  return percentile(values, 90) - percentile(values, 10)
}

/** Rounds for display and JSON: 3 significant decimals below 10, 2 below 1000, 0 above. */
export function round (value: number): number {
  if (!Number.isFinite(value)) {
    return value
  }
  const abs = Math.abs(value)
  const digits = abs < 1 ? 4 : abs < 10 ? 3 : abs < 1000 ? 2 : 0
  const factor = 10 ** digits
  return Math.round(value * factor) / factor
}

/** A metric from per-run values: median and p90 − p10. */
export function fromRuns (values: readonly number[], unit: string, extra: Partial<Metric> = {}): Metric {
  return { value: round(median(values)), unit, runs: values.length, spread: round(spread(values)), ...extra }
}

export function withBaseline (metric: Metric, baseline: Metric | number | null | undefined, met?: (m: Metric) => boolean): Metric {
  const base = typeof baseline === 'number' ? baseline : baseline?.value ?? null
  metric.baseline = base
  metric.ratio = base != null && metric.value != null && base !== 0 ? round(metric.value / base) : null
  if (met != null && metric.value != null) {
    metric.met = met(metric)
  }
  return metric
}

export function notMeasured (unit: string, note: string, target?: string): Metric {
  return { value: null, unit, runs: 0, spread: null, note, ...(target != null ? { target } : {}) }
}

export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** VmRSS of a process in MiB, from /proc/<pid>/status. */
export async function rssMb (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
  if (match == null) {
    throw new Error(`no VmRSS for pid ${pid}`)
  }
  return Number(match[1]) / 1024
}

/** A child process whose stdout lines can be awaited; keeps only recent lines (workers log every job). */
export class Proc {
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
  private readonly recent: string[] = []
  private readonly errors: string[] = []
  private readonly waiters = new Set<(line: string) => void>()

  constructor (command: string, args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    createInterface({ input: this.child.stdout! }).on('line', line => {
      this.recent.push(line)
      if (this.recent.length > 50) {
        this.recent.shift()
      }
      for (const waiter of this.waiters) {
        waiter(line)
      }
    })
    createInterface({ input: this.child.stderr! }).on('line', line => {
      this.errors.push(line)
      if (this.errors.length > 50) {
        this.errors.shift()
      }
      // some lines only go to stderr (the bootstrap node's `web page: URL`)
      for (const waiter of this.waiters) {
        waiter(line)
      }
    })
    this.exited = new Promise(resolve => this.child.on('exit', code => { resolve(code) }))
  }

  get pid (): number {
    return this.child.pid as number
  }

  async waitForLine (pattern: RegExp, timeoutMs = 60_000): Promise<string> {
    const existing = [...this.recent, ...this.errors].find(line => pattern.test(line))
    if (existing != null) {
      return existing
    }
    return await new Promise((resolve, reject) => {
      const check = (line: string): void => {
        if (pattern.test(line)) {
          clearTimeout(timer)
          this.waiters.delete(check)
          resolve(line)
        }
      }
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; stdout: ${this.recent.join(' | ')}; stderr: ${this.errors.join(' | ')}`))
      }, timeoutMs)
      this.waiters.add(check)
      void this.exited.then(code => {
        clearTimeout(timer)
        reject(new Error(`process exited (${code}) before printing ${pattern}; stderr: ${this.errors.join(' | ')}`))
      })
    })
  }

  /** SIGTERM (so `--cpu-prof` can write its profile), then SIGKILL after `graceMs`. */
  async kill (graceMs = 3000): Promise<void> {
    if (this.child.exitCode == null && this.child.signalCode == null) {
      this.child.kill('SIGTERM')
      const timer = setTimeout(() => { this.child.kill('SIGKILL') }, graceMs)
      await this.exited
      clearTimeout(timer)
    }
    await this.exited
  }
}

/** Every process the bench started, so it can stop exactly those. */
export const started = new Set<Proc>()

export function spawnNode (args: string[], env: NodeJS.ProcessEnv): Proc {
  const proc = new Proc(process.execPath, args, env)
  started.add(proc)
  void proc.exited.then(() => started.delete(proc))
  return proc
}

export async function killAll (): Promise<void> {
  await Promise.all([...started].map(async proc => { await proc.kill() }))
}

/** Compiles WAT text to a Wasm binary with the `wabt` npm package. */
export async function watToWasm (name: string, text: string): Promise<Uint8Array> {
  const toolkit = await wabt()
  const parsed = toolkit.parseWat(`${name}.wat`, text)
  try {
    parsed.resolveNames()
    parsed.validate()
    return new Uint8Array(parsed.toBinary({}).buffer)
  } finally {
    parsed.destroy()
  }
}

/** wasi: does nothing and returns (exit 0, no output). */
export const EMPTY_WASI_WAT = `(module
  (memory (export "memory") 1)
  (func (export "_start")))`

/** direct: alloc returns a fixed pointer, run returns no output. */
export const EMPTY_DIRECT_WAT = `(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "run") (param i32 i32) (result i64) (i64.const 0)))`

export const BIG_MARKER = 'WASMESH-BENCH-NONCE:'

/**
 * echo.wat plus a data segment of `dataBytes` pseudo-random bytes, so the
 * module is about that size. The segment starts with BIG_MARKER and 16 bytes
 * that `freshBigModule` overwrites, so every run gets a new CID without
 * recompiling.
 */
export async function bigEchoModule (dataBytes: number): Promise<Uint8Array> {
  const echo = await readFile(join(repoRoot, 'test', 'fixtures', 'wat', 'echo.wat'), 'utf8')
  const pages = Math.ceil((65536 + dataBytes) / 65536) + 1
  let state = 0x12345678
  const hex: string[] = []
  for (let i = 0; i < dataBytes; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    hex.push(`\\${((state >>> 24) & 0xff).toString(16).padStart(2, '0')}`)
  }
  const segment = `(data (i32.const 65536) "${BIG_MARKER}${'0'.repeat(16)}${hex.join('')}")`
  const text = echo
    .replace('(memory (export "memory") 1)', `(memory (export "memory") ${pages})\n  ${segment}`)
  if (text === echo) {
    throw new Error('echo.wat changed: could not insert the data segment')
  }
  return await watToWasm('big-echo', text)
}

/** A copy of the big module with 16 random bytes after the marker: a new CID. */
export function freshBigModule (template: Uint8Array): Uint8Array {
  const marker = new TextEncoder().encode(BIG_MARKER)
  const at = Buffer.from(template).indexOf(Buffer.from(marker))
  if (at < 0) {
    throw new Error('marker not found in the big module')
  }
  const copy = template.slice()
  crypto.getRandomValues(copy.subarray(at + marker.length, at + marker.length + 16))
  return copy
}
