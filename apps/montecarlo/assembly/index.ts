// Monte Carlo estimate of pi, a WASI command: reads "seed samples" (decimal)
// from stdin, draws `samples` points in the unit square from a splitmix64
// generator seeded with `seed`, and writes "inside samples\n": pi is about
// 4 * inside / samples. No clock or entropy: the seed is the only source.
import { fd_read, fd_write, proc_exit } from './wasi_snapshot_preview1'

const INPUT_MAX: usize = 64
const EXIT_USAGE = 2
// 2^-53: turns the top 53 bits of a u64 into a double in [0, 1).
const UNIT = 1.1102230246251565e-16

// splitmix64's constants, built from 32-bit halves (a 64-bit literal reads as a lossy JS number to linters).
const GAMMA: u64 = (<u64>0x9e3779b9 << 32) | 0x7f4a7c15
const MIX1: u64 = (<u64>0xbf58476d << 32) | 0x1ce4e5b9
const MIX2: u64 = (<u64>0x94d049bb << 32) | 0x133111eb

let state: u64 = 0

function next (): u64 {
  state += GAMMA
  let z = state
  z = (z ^ (z >> 30)) * MIX1
  z = (z ^ (z >> 27)) * MIX2
  return z ^ (z >> 31)
}

function readInput (buffer: usize): usize {
  // iovec { buf, len } and the count read, after the buffer
  const iov = buffer + INPUT_MAX
  let length: usize = 0
  while (length < INPUT_MAX) {
    store<u32>(iov, <u32>(buffer + length))
    store<u32>(iov, <u32>(INPUT_MAX - length), 4)
    if (fd_read(0, iov, 1, iov + 8) != 0) break
    const read = load<u32>(iov, 8)
    if (read == 0) break
    length += read
  }
  return length
}

/** Where parseNumber goes on reading. */
let cursor: usize = 0

/** Parses the next decimal number at or after `cursor`; exits with EXIT_USAGE when there is none. */
function parseNumber (buffer: usize, length: usize): u64 {
  while (cursor < length && (load<u8>(buffer + cursor) < 0x30 || load<u8>(buffer + cursor) > 0x39)) cursor++
  if (cursor == length) proc_exit(EXIT_USAGE)
  let value: u64 = 0
  while (cursor < length) {
    const digit = load<u8>(buffer + cursor)
    if (digit < 0x30 || digit > 0x39) break
    value = value * 10 + <u64>(digit - 0x30)
    cursor++
  }
  return value
}

/** Writes `value` in decimal at `at`; returns the bytes written. */
function writeNumber (at: usize, value: u64): usize {
  let digits: usize = 1
  for (let rest = value / 10; rest > 0; rest /= 10) digits++
  let v = value
  for (let i = digits; i > 0; i--) {
    store<u8>(at + i - 1, <u8>(0x30 + v % 10))
    v /= 10
  }
  return digits
}

export function _start (): void {
  const buffer = heap.alloc(INPUT_MAX + 16)
  const length = readInput(buffer)
  state = parseNumber(buffer, length)
  const samples = parseNumber(buffer, length)
  let inside: u64 = 0
  for (let i: u64 = 0; i < samples; i++) {
    const x = <f64>(next() >> 11) * UNIT
    const y = <f64>(next() >> 11) * UNIT
    if (x * x + y * y < 1.0) inside++
  }
  const out = heap.alloc(64)
  let n = writeNumber(out, inside)
  store<u8>(out + n++, 0x20)
  n += writeNumber(out + n, samples)
  store<u8>(out + n++, 0x0a)
  const iov = heap.alloc(16)
  store<u32>(iov, <u32>out)
  store<u32>(iov, <u32>n, 4)
  fd_write(1, iov, 1, iov + 8)
}
