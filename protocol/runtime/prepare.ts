/**
 * Checks a module's bytes against the job's ABI and limits before it is
 * compiled, and rewrites its memory section so the limit is part of the module
 * itself. Engines do not cap Wasm memory from the outside (worker heap limits
 * do not apply to it), but every engine honours a memory's declared maximum,
 * so patching the maximum enforces the cap the same way in Node and browsers.
 */
import { ForbiddenImportError, InvalidModuleError, MemoryLimitError } from '../errors.ts'
import type { Abi } from './executor.ts'

export const PAGE_BYTES = 65536
export const WASI_MODULE = 'wasi_snapshot_preview1'

const MAGIC_AND_VERSION = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
const SECTION_IMPORT = 2
const SECTION_MEMORY = 5
const LIMITS_HAS_MAX = 0x01
const LIMITS_SHARED = 0x02
const LIMITS_MEMORY64 = 0x04

/** Import kinds as named by `WebAssembly.Module.imports()`, indexed by their binary code. */
const IMPORT_KINDS = ['function', 'table', 'memory', 'global', 'tag'] as const

export interface MemoryLimits {
  /** Maximum linear memory in bytes, rounded down to whole pages. */
  memoryBytes: number
}

/** Whole 64 KiB pages that fit in `memoryBytes`. */
export function memoryPages (memoryBytes: number): number {
  return Math.floor(memoryBytes / PAGE_BYTES)
}

/** Bytes as MiB for messages: "4", "0.5", "1.25". */
export function formatMiB (bytes: number): string {
  return String(Math.round(bytes / 1048576 * 100) / 100)
}

/** The namespaces of WASIX, which only @wasmer/sdk provides (see wasix.ts). */
export const WASIX_MODULES: readonly string[] = ['wasix_32v1', 'wasix_64v1']

/**
 * Throws ForbiddenImportError unless the ABI provides this import: wasi
 * provides only functions from wasi_snapshot_preview1 (and, when `wasix`,
 * from the WASIX namespaces), direct provides nothing.
 */
export function checkImport (abi: Abi, module: string, name: string, kind: string, wasix = false): void {
  if (abi === 'wasi' && kind === 'function' && (module === WASI_MODULE || (wasix && WASIX_MODULES.includes(module)))) {
    return
  }
  throw new ForbiddenImportError(`module imports "${module}"."${name}" (${kind}), which the ${abi} ABI does not provide`)
}

/**
 * Validates the header and imports, caps every memory's maximum at the job's
 * limit and returns the patched bytes (the input is not modified).
 */
export function prepareModule (bytes: Uint8Array, abi: Abi, limits: MemoryLimits, wasix = false): Uint8Array<ArrayBuffer> {
  if (bytes.length < 8 || MAGIC_AND_VERSION.some((b, i) => bytes[i] !== b)) {
    throw new InvalidModuleError('not a WebAssembly module (bad magic bytes)')
  }
  const reader = new Reader(bytes, 8)
  while (reader.pos < bytes.length) {
    const sectionStart = reader.pos
    const id = reader.byte()
    const size = reader.u32()
    const bodyStart = reader.pos
    const bodyEnd = bodyStart + size
    if (bodyEnd > bytes.length) {
      throw new InvalidModuleError('malformed module: a section runs past the end of the file')
    }
    if (id === SECTION_IMPORT) {
      checkImports(new Reader(bytes.subarray(0, bodyEnd), bodyStart), abi, wasix)
    } else if (id === SECTION_MEMORY) {
      const body = capMemories(new Reader(bytes.subarray(0, bodyEnd), bodyStart), limits)
      const section = [id, ...uleb(body.length), ...body]
      const patched = new Uint8Array(bytes.length - (bodyEnd - sectionStart) + section.length)
      patched.set(bytes.subarray(0, sectionStart))
      patched.set(section, sectionStart)
      patched.set(bytes.subarray(bodyEnd), sectionStart + section.length)
      // Sections come in a fixed order and imports precede memory: nothing is left to check.
      return patched
    }
    reader.pos = bodyEnd
  }
  // No memory section (only possible for modules that will fail the export check).
  return bytes.slice()
}

function checkImports (reader: Reader, abi: Abi, wasix: boolean): void {
  const count = reader.u32()
  for (let i = 0; i < count; i++) {
    const module = reader.name()
    const name = reader.name()
    const code = reader.byte()
    checkImport(abi, module, name, IMPORT_KINDS[code] ?? `kind ${code}`, wasix)
    // Only function imports get past the check: skip the type index.
    reader.u32()
  }
}

/** Whether the module imports from a WASIX namespace: then only @wasmer/sdk can run it. Malformed bytes say no (compiling says why). */
export function importsWasix (bytes: Uint8Array): boolean {
  if (bytes.length < 8 || MAGIC_AND_VERSION.some((b, i) => bytes[i] !== b)) {
    return false
  }
  try {
    const reader = new Reader(bytes, 8)
    while (reader.pos < bytes.length) {
      const id = reader.byte()
      const size = reader.u32()
      const bodyEnd = reader.pos + size
      if (id === SECTION_IMPORT) {
        const imports = new Reader(bytes.subarray(0, bodyEnd), reader.pos)
        const count = imports.u32()
        for (let i = 0; i < count; i++) {
          if (WASIX_MODULES.includes(imports.name())) {
            return true
          }
          imports.name()
          const kind = imports.byte()
          skipImportDescription(imports, kind)
        }
        return false
      }
      reader.pos = bodyEnd
    }
  } catch {
    // malformed: not ours to diagnose here
  }
  return false
}

/** Skips an import's description after its kind byte: a type index, a table, memory or global type, or a tag. */
function skipImportDescription (reader: Reader, kind: number): void {
  if (kind === 0 || kind === 4) { // function: type index; tag: attribute + type index
    if (kind === 4) {
      reader.byte()
    }
    reader.u32()
  } else if (kind === 1) { // table: reftype + limits
    reader.byte()
    skipLimits(reader)
  } else if (kind === 2) { // memory: limits
    skipLimits(reader)
  } else { // global: valtype + mutability
    reader.byte()
    reader.byte()
  }
}

function skipLimits (reader: Reader): void {
  const flags = reader.byte()
  reader.u32()
  if ((flags & LIMITS_HAS_MAX) !== 0) {
    reader.u32()
  }
}

/** Reads the memory section and returns its body with each maximum capped. */
function capMemories (reader: Reader, limits: MemoryLimits): number[] {
  const limitPages = memoryPages(limits.memoryBytes)
  const count = reader.u32()
  // Several memories would each get the whole limit.
  if (count > 1) {
    throw new InvalidModuleError(`the module declares ${count} memories; only one is supported`)
  }
  const body = uleb(count)
  for (let i = 0; i < count; i++) {
    const flags = reader.byte()
    if ((flags & LIMITS_MEMORY64) !== 0) {
      throw new InvalidModuleError('the module uses 64-bit memory (memory64), which is not supported')
    }
    if ((flags & LIMITS_SHARED) !== 0) {
      throw new InvalidModuleError('the module uses shared memory (threads), which is not supported')
    }
    if (flags > LIMITS_HAS_MAX) {
      throw new InvalidModuleError(`malformed module: unknown memory limits flags 0x${flags.toString(16)}`)
    }
    const initial = reader.u32()
    const declaredMax = (flags & LIMITS_HAS_MAX) !== 0 ? reader.u32() : Infinity
    if (initial > limitPages) {
      throw new MemoryLimitError(`the module needs ${formatMiB(initial * PAGE_BYTES)} MiB of memory at start, more than the job's limit of ${formatMiB(limits.memoryBytes)} MiB`)
    }
    body.push(LIMITS_HAS_MAX, ...uleb(initial), ...uleb(Math.min(declaredMax, limitPages)))
  }
  if (reader.pos !== reader.bytes.length) {
    throw new InvalidModuleError('malformed module: the memory section has trailing bytes')
  }
  return body
}

/** Unsigned LEB128 encoding of a u32. */
function uleb (value: number): number[] {
  const out: number[] = []
  do {
    let byte = value & 0x7f
    value >>>= 7
    if (value !== 0) {
      byte |= 0x80
    }
    out.push(byte)
  } while (value !== 0)
  return out
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Just enough of a Wasm binary reader to walk sections, imports and memories. */
class Reader {
  readonly bytes: Uint8Array
  pos: number

  constructor (bytes: Uint8Array, pos: number) {
    this.bytes = bytes
    this.pos = pos
  }

  byte (): number {
    const byte = this.bytes[this.pos++]
    if (byte === undefined) {
      throw new InvalidModuleError('malformed module: unexpected end of data')
    }
    return byte
  }

  u32 (): number {
    let result = 0
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.byte()
      result += (byte & 0x7f) * 2 ** shift
      if ((byte & 0x80) === 0) {
        if (result > 0xffffffff) {
          throw new InvalidModuleError('malformed module: integer too large')
        }
        return result
      }
    }
    throw new InvalidModuleError('malformed module: integer representation too long')
  }

  name (): string {
    const length = this.u32()
    const end = this.pos + length
    if (end > this.bytes.length) {
      throw new InvalidModuleError('malformed module: unexpected end of data')
    }
    try {
      return utf8.decode(this.bytes.subarray(this.pos, end))
    } catch {
      throw new InvalidModuleError('malformed module: an import name is not valid UTF-8')
    } finally {
      this.pos = end
    }
  }
}
