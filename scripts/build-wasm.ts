/**
 * Compiles the test modules in test/fixtures/wat/*.wat to build/wasm/*.wasm
 * with the npm `wabt` package, skipping outputs newer than their source.
 * Run it with `node scripts/build-wasm.ts`, or call buildWasm() from tests.
 */
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import wabt from 'wabt'

export const WAT_DIR = fileURLToPath(new URL('../test/fixtures/wat/', import.meta.url))
export const WASM_DIR = fileURLToPath(new URL('../build/wasm/', import.meta.url))

/** The path of the built module `name` (a fixture file name without `.wat`). */
export function wasmPath (name: string): string {
  return join(WASM_DIR, `${name}.wasm`)
}

/** Builds every stale fixture; returns the names of the modules it (re)built. */
export async function buildWasm (): Promise<string[]> {
  const names = (await readdir(WAT_DIR)).filter(file => file.endsWith('.wat')).map(file => basename(file, '.wat'))
  const stale: string[] = []
  for (const name of names) {
    const source = await stat(join(WAT_DIR, `${name}.wat`))
    const output = await stat(wasmPath(name)).catch(() => undefined)
    if (output === undefined || output.mtimeMs < source.mtimeMs) {
      stale.push(name)
    }
  }
  if (stale.length === 0) {
    return stale
  }
  // Loading wabt costs more than compiling a fixture, so only when needed.
  const toolkit = await wabt()
  await mkdir(WASM_DIR, { recursive: true })
  for (const name of stale) {
    const file = join(WAT_DIR, `${name}.wat`)
    const parsed = toolkit.parseWat(file, await readFile(file, 'utf8'))
    try {
      parsed.resolveNames()
      parsed.validate()
      // Write then rename: test files run in parallel processes that may build at once.
      const temporary = `${wasmPath(name)}.${process.pid}.tmp`
      await writeFile(temporary, parsed.toBinary({}).buffer)
      await rename(temporary, wasmPath(name))
    } finally {
      parsed.destroy()
    }
  }
  return stale
}

if (import.meta.main) {
  const built = await buildWasm()
  console.log(built.length === 0 ? 'build/wasm is up to date' : `built ${built.map(name => `${name}.wasm`).join(', ')}`)
}
