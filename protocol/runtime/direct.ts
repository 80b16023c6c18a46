/**
 * The direct ABI, for modules with no imports at all: the module exports
 * `memory`, `alloc(len: i32) -> i32` and `run(ptr: i32, len: i32) -> i64`,
 * where run's result packs the output as (outPtr << 32) | outLen.
 */
import { InvalidModuleError, OutputLimitError, WasmTrapError } from '../errors.ts'

export const DIRECT_EXPORTS = ['memory', 'alloc', 'run'] as const

/** Copies `input` in, calls `run` and copies the output out. Exports must have been checked. */
export function runDirect (instance: WebAssembly.Instance, input: Uint8Array, outputBytes: number): Uint8Array<ArrayBuffer> {
  const memory = instance.exports.memory as WebAssembly.Memory
  const alloc = instance.exports.alloc as (length: number) => number
  const run = instance.exports.run as (ptr: number, length: number) => unknown

  const inPtr = alloc(input.length) >>> 0
  if (inPtr + input.length > memory.buffer.byteLength) {
    throw new WasmTrapError(`alloc(${input.length}) returned ${inPtr}, which is outside the module's memory`)
  }
  new Uint8Array(memory.buffer, inPtr, input.length).set(input)

  const packed = run(inPtr, input.length)
  if (typeof packed !== 'bigint') {
    throw new InvalidModuleError('the direct ABI\'s run must return an i64 packing (outPtr << 32) | outLen')
  }
  const outPtr = Number(BigInt.asUintN(32, packed >> 32n))
  const outLength = Number(BigInt.asUintN(32, packed))
  if (outLength > outputBytes) {
    throw new OutputLimitError(`the module returned ${outLength} bytes, more than the job's output limit of ${outputBytes} bytes`)
  }
  // Read the buffer again: run may have grown (and so replaced) it.
  if (outPtr + outLength > memory.buffer.byteLength) {
    throw new WasmTrapError(`run returned output at ${outPtr} of ${outLength} bytes, which is outside the module's memory`)
  }
  return new Uint8Array(memory.buffer, outPtr, outLength).slice()
}
