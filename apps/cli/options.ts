import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { InvalidArgumentError, Option } from 'commander'
import { multiaddr } from '@multiformats/multiaddr'
import { wasmeshHome } from '../../node/index.ts'

/** Exit codes: 0 verified success, 1 the job failed, 2 bad usage or input, 3 the network could not run it. */
export const EXIT_JOB_FAILED = 1
export const EXIT_USAGE = 2
export const EXIT_NETWORK = 3

/** Bad usage: a missing or malformed flag or file. Exits 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** Reads a file the user named: one that is missing or unreadable is bad usage, said in words rather than as a bare ENOENT. */
export async function readUserFile (path: string, what: string, hint?: string): Promise<Uint8Array> {
  try {
    return await readFile(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder, not a file' : code === 'EACCES' ? 'permission denied' : (err as Error).message
    throw new UsageError(`cannot read ${what} ${path}: ${why}${hint != null ? ` (${hint})` : ''}`)
  }
}

/** Where every requester command keeps its record of workers, so a liar caught by one run stays caught in the next. */
export function reputationDir (): string {
  return join(wasmeshHome(), 'reputation')
}

export const bootstrapOption = (): Option => new Option('-b, --bootstrap <multiaddr...>', 'bootstrap node(s) to join through; default: $WASMESH_BOOTSTRAP, else the local network `npm start` runs')
  .argParser(multiaddrs)

/** Collects repeated multiaddr arguments, refusing one that does not parse (a usage error, not a network one). */
export function multiaddrs (value: string, previous: string[] | undefined): string[] {
  try {
    multiaddr(value)
  } catch (err) {
    throw new InvalidArgumentError(`"${value}" is not a multiaddr (${(err as Error).message}); e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3Koo…`)
  }
  return [...previous ?? [], value]
}

export function whole (value: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new InvalidArgumentError('expected a whole number')
  }
  return n
}

export function positive (value: string): number {
  const n = whole(value)
  if (n < 1) {
    throw new InvalidArgumentError('expected a positive whole number')
  }
  return n
}

export function finite (value: string): number {
  const n = Number(value)
  if (!Number.isFinite(n)) {
    throw new InvalidArgumentError('expected a number')
  }
  return n
}

export function pair (value: string): [number, number] {
  const parts = value.split(',').map(Number)
  if (parts.length !== 2 || !parts.every(Number.isFinite)) {
    throw new InvalidArgumentError('expected two numbers: re,im')
  }
  return parts as [number, number]
}

export function parseEnv (pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {}
  for (const entry of pairs) {
    const eq = entry.indexOf('=')
    if (eq <= 0) {
      throw new UsageError(`--env ${entry}: expected KEY=VALUE`)
    }
    env[entry.slice(0, eq)] = entry.slice(eq + 1)
  }
  return env
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, kib: 1024, m: 1e6, mb: 1e6, mib: 1024 ** 2, g: 1e9, gb: 1e9, gib: 1024 ** 3, t: 1e12, tb: 1e12, tib: 1024 ** 4 }

/** A size: bytes, or with a unit (10MiB, 2GiB, 500MB). */
export function size (value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim())
  const unit = SIZE_UNITS[(match?.[2] ?? '').toLowerCase()]
  if (match == null || unit == null) {
    throw new InvalidArgumentError('expected a size such as 2GiB, 500MB or 1048576')
  }
  return Math.floor(Number(match[1]) * unit)
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** A duration: milliseconds, or with a unit (90s, 10m, 12h, 30d). */
export function duration (value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(value.trim())
  if (match == null) {
    throw new InvalidArgumentError('expected a duration such as 30d, 12h, 90s or 5000 (ms)')
  }
  return Math.floor(Number(match[1]) * (DURATION_UNITS[match[2] ?? 'ms'] as number))
}
