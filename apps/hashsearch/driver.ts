/**
 * The proof-of-work app: searches a nonce range for SHA-256(prefix || nonce)
 * with `bits` leading zero bits, one job per chunk of the range
 * (apps/hashsearch/assembly, direct ABI). Every match a worker claims is
 * hashed again here before it is accepted.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import type { ModuleRef } from '../../protocol/public.ts'
import { malformed, runJobs, type AppRunOptions, type JobDone, type MapPeer } from '../shared.ts'

export const MODULE_FILE = 'hashsearch.wasm'

export interface HashSearchOptions {
  /** UTF-8, at most 64 bytes. */
  prefix: string
  /** Leading zero bits a digest needs. */
  bits: number
  /** First nonce, and how many to try. */
  start: number
  count: number
  /** Nonces per job. */
  chunk: number
}

export const HASHSEARCH_DEFAULTS: HashSearchOptions = { prefix: 'wasmesh', bits: 20, start: 0, count: 4_000_000, chunk: 250_000 }

/** What the module accepts and reports. */
export const MAX_PREFIX_BYTES = 64
export const MAX_MATCHES_PER_JOB = 64
const MATCH_BYTES = 40

export interface Match {
  nonce: number
  /** The digest, hex. */
  hash: string
}

export interface ChunkDone extends JobDone {
  /** The nonces this job covered. */
  start: number
  count: number
  matches: Match[]
  /** Nonces searched so far, in all jobs that finished. */
  searched: number
}

export interface HashSearchResult {
  /** Every match in the range, by nonce. */
  matches: Match[]
  searched: number
  workers: Map<string, number>
}

/** A chunk's job input: u64 start, u32 count, u32 bits (little-endian), then the prefix. */
export function chunkInput (prefix: Uint8Array, bits: number, start: number, count: number): Uint8Array {
  const input = new Uint8Array(16 + prefix.length)
  const view = new DataView(input.buffer)
  view.setBigUint64(0, BigInt(start), true)
  view.setUint32(8, count, true)
  view.setUint32(12, bits, true)
  input.set(prefix, 16)
  return input
}

/** Splits [start, start + count) into jobs of `chunk` nonces. */
export function chunks (options: HashSearchOptions): Array<{ start: number, count: number }> {
  checkOptions(options)
  const list: Array<{ start: number, count: number }> = []
  for (let offset = 0; offset < options.count; offset += options.chunk) {
    list.push({ start: options.start + offset, count: Math.min(options.chunk, options.count - offset) })
  }
  return list
}

/** Parses a job's output: u32 matches, then per match u64 nonce (LE) and the 32-byte digest. */
export function parseMatches (output: Uint8Array, index = 0): Array<{ nonce: number, digest: Uint8Array }> {
  if (output.length < 4) {
    throw malformed('hashsearch', index, `${output.length} bytes`)
  }
  const view = new DataView(output.buffer, output.byteOffset, output.byteLength)
  const found = view.getUint32(0, true)
  if (found > MAX_MATCHES_PER_JOB || output.length !== 4 + found * MATCH_BYTES) {
    throw malformed('hashsearch', index, `${found} matches in ${output.length} bytes`)
  }
  return Array.from({ length: found }, (_, i) => ({
    nonce: Number(view.getBigUint64(4 + i * MATCH_BYTES, true)),
    digest: output.slice(8 + 4 + i * MATCH_BYTES, 4 + (i + 1) * MATCH_BYTES)
  }))
}

/** SHA-256(prefix || nonce as 8 bytes big-endian), with @noble/hashes: WebCrypto is missing from pages served over plain HTTP on a LAN. */
export async function digest (prefix: Uint8Array, nonce: number): Promise<Uint8Array> {
  const message = new Uint8Array(prefix.length + 8)
  message.set(prefix)
  new DataView(message.buffer).setBigUint64(prefix.length, BigInt(nonce), false)
  return sha256(message)
}

export function leadingZeroBits (bytes: Uint8Array): number {
  let bits = 0
  for (const byte of bytes) {
    if (byte !== 0) {
      return bits + Math.clz32(byte) - 24
    }
    bits += 8
  }
  return bits
}

export function hex (bytes: Uint8Array): string {
  return Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('')
}

/**
 * Searches the range on the network; `onChunk` sees each job's matches as
 * they arrive. A claimed match whose digest does not check out is an error,
 * not a result: the worker's receipt vouches for bytes, not for the search.
 */
export async function searchHashes (peer: MapPeer, module: ModuleRef, options: HashSearchOptions, run: AppRunOptions = {}, onChunk?: (chunk: ChunkDone) => void): Promise<HashSearchResult> {
  const prefix = new TextEncoder().encode(options.prefix)
  const list = chunks(options)
  const workers = new Map<string, number>()
  const matches: Match[] = []
  const checks: Array<Promise<void>> = []
  let searched = 0
  await runJobs(peer, module, list.map(c => chunkInput(prefix, options.bits, c.start, c.count)), 'direct', run, (output, job) => {
    const range = list[job.index] as { start: number, count: number }
    const claimed = parseMatches(output, job.index)
    const found = claimed.map(m => ({ nonce: m.nonce, hash: hex(m.digest) }))
    searched += range.count
    workers.set(job.worker, (workers.get(job.worker) ?? 0) + 1)
    matches.push(...found)
    checks.push(...claimed.map(async m => {
      const actual = await digest(prefix, m.nonce)
      if (m.nonce < range.start || m.nonce >= range.start + range.count || hex(actual) !== hex(m.digest) || leadingZeroBits(actual) < options.bits) {
        throw malformed('hashsearch', job.index, `nonce ${m.nonce} is not a match`)
      }
    }))
    onChunk?.({ ...job, ...range, matches: found, searched })
  })
  await Promise.all(checks)
  matches.sort((a, b) => a.nonce - b.nonce)
  return { matches, searched, workers }
}

function checkOptions (options: HashSearchOptions): void {
  if (new TextEncoder().encode(options.prefix).length > MAX_PREFIX_BYTES) {
    throw new RangeError(`hashsearch: the prefix must be at most ${MAX_PREFIX_BYTES} bytes`)
  }
  if (!Number.isInteger(options.bits) || options.bits < 0 || options.bits > 256) {
    throw new RangeError('hashsearch: bits must be a whole number from 0 to 256')
  }
  if (!Number.isSafeInteger(options.start) || options.start < 0 || !Number.isSafeInteger(options.start + options.count)) {
    throw new RangeError('hashsearch: start and start + count must be safe non-negative integers')
  }
  if (!Number.isInteger(options.count) || options.count < 1 || !Number.isInteger(options.chunk) || options.chunk < 1 || options.chunk > 0xffffffff) {
    throw new RangeError('hashsearch: count and chunk must be positive integers (chunk < 2^32)')
  }
}
