/**
 * Compiles the test modules in test/fixtures/wat/*.wat with the npm `wabt`
 * package, and the workloads in apps/<name>/assembly/ (entry index.ts) with
 * AssemblyScript, to build/wasm/<name>.wasm, skipping outputs newer than their
 * sources. Run it with `node scripts/build-wasm.ts`, or call buildWasm() from tests.
 */
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { basename, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import wabt from 'wabt'

export const WAT_DIR = fileURLToPath(new URL('../test/fixtures/wat/', import.meta.url))
export const APPS_DIR = fileURLToPath(new URL('../apps/', import.meta.url))
export const WASM_DIR = fileURLToPath(new URL('../build/wasm/', import.meta.url))
const ROOT = fileURLToPath(new URL('../', import.meta.url))

/**
 * asc flags for the apps: the stub runtime (a bump allocator, no GC) and no
 * `env.abort` import, so a direct-ABI module imports nothing at all. The same
 * sources and compiler version give the same bytes, so the same module CID.
 */
const ASC_FLAGS = ['-O3', '--runtime', 'stub', '--noAssert', '--use', 'abort=']

/** The path of the built module `name` (a fixture file name without `.wat`). */
export function wasmPath (name: string): string {
  return join(WASM_DIR, `${name}.wasm`)
}

/** Builds every stale fixture and app; returns the names of the modules it (re)built. */
export async function buildWasm (): Promise<string[]> {
  return [...await buildFixtures(), ...await buildApps()]
}

async function buildFixtures (): Promise<string[]> {
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

/** The apps with AssemblyScript sources: apps/<name>/assembly/index.ts. */
export async function appNames (): Promise<string[]> {
  const entries = await readdir(APPS_DIR, { withFileTypes: true }).catch(() => [])
  const names: string[] = []
  for (const entry of entries.filter(e => e.isDirectory())) {
    if (await stat(join(APPS_DIR, entry.name, 'assembly', 'index.ts')).catch(() => undefined) !== undefined) {
      names.push(entry.name)
    }
  }
  return names.sort()
}

async function buildApps (): Promise<string[]> {
  const stale: string[] = []
  for (const name of await appNames()) {
    const sources = join(APPS_DIR, name, 'assembly')
    const newest = Math.max(...await Promise.all((await readdir(sources)).map(async file => (await stat(join(sources, file))).mtimeMs)))
    const output = await stat(wasmPath(name)).catch(() => undefined)
    if (output === undefined || output.mtimeMs < newest) {
      stale.push(name)
    }
  }
  if (stale.length === 0) {
    return stale
  }
  // Loading the compiler takes seconds: only when something changed.
  const { default: asc } = await import('assemblyscript/asc')
  await mkdir(WASM_DIR, { recursive: true })
  for (const name of stale) {
    const temporary = `${wasmPath(name)}.${process.pid}.tmp`
    const entry = relative(ROOT, join(APPS_DIR, name, 'assembly', 'index.ts'))
    const log: string[] = []
    const sink = { write: (chunk: string | Uint8Array): boolean => { log.push(String(chunk)); return true } }
    // Relative paths from the repo root: they end up in the module's debug names.
    const { error } = await asc.main([entry, '-o', relative(ROOT, temporary), ...ASC_FLAGS], { stdout: sink, stderr: sink, baseDir: ROOT } as Parameters<typeof asc.main>[1])
    if (error != null) {
      throw new Error(`asc failed for apps/${name}: ${error.message}\n${log.join('')}`)
    }
    await rename(temporary, wasmPath(name))
  }
  return stale
}

if (import.meta.main) {
  const built = await buildWasm()
  console.log(built.length === 0 ? 'build/wasm is up to date' : `built ${built.map(name => `${name}.wasm`).join(', ')}`)
}
