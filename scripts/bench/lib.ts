/**
 * Helpers for scripts/bench/run.ts: statistics, machine description, CLI
 * processes (bootstrap and worker peers as separate OS processes) and the
 * WAT modules the bench builds itself.
 */
import { readFile } from 'node:fs/promises'
import { cpus, availableParallelism, totalmem, release, platform, arch } from 'node:os'
import { join } from 'node:path'
import wabt from 'wabt'
import { createPeer } from '../../node/index.ts'
import { NodeProcess, repoRoot, type ProcessNetwork } from '../../test/helpers/processes.ts'
export { rssMiB } from '../../test/helpers/processes.ts'
import type { Peer } from '../../node/index.ts'


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

/** Every helper process the bench started itself (networks track their own), so it can stop exactly those. */
const started = new Set<NodeProcess>()

export function spawnNode (args: string[], env: NodeJS.ProcessEnv): NodeProcess {
  const proc = new NodeProcess(args, env)
  started.add(proc)
  void proc.exited.then(() => started.delete(proc))
  return proc
}

export async function killAll (): Promise<void> {
  await Promise.all([...started].map(async proc => { await proc.stop() }))
}

const requesters = new Map<ProcessNetwork, Peer[]>()

/** An in-process requester on `network` (no contribution, in-memory stores), stopped by `stopNetwork`. */
export async function requester (network: ProcessNetwork): Promise<Peer> {
  const peer = await createPeer({ bootstrap: [network.bootstrapAddr], listen: ['/ip4/127.0.0.1/tcp/0'] })
  requesters.set(network, [...(requesters.get(network) ?? []), peer])
  return peer
}

export async function stopNetwork (network: ProcessNetwork): Promise<void> {
  await Promise.all((requesters.get(network) ?? []).map(async peer => { await peer.stop().catch(() => {}) }))
  requesters.delete(network)
  await network.stop()
}

/** Waits until `peer` has adverts from `count` of the network's running workers. */
export async function waitForWorkers (peer: Peer, network: ProcessNetwork, count = network.workers.length, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (true) {
    const known = new Set(peer.peers().filter(p => p.advert.slots.total > 0).map(p => p.peerId))
    if (network.workers.filter(w => known.has(w.peerId)).length >= count) {
      return
    }
    if (Date.now() > until) {
      throw new Error(`only ${known.size} of ${count} workers advertised within ${timeoutMs} ms`)
    }
    await sleep(50)
  }
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
