import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The folder of the wasmesh package this CLI runs from, found by walking up
 * to its package.json: the same answer from a checkout (apps/cli/) and from
 * an installed package (dist/apps/cli/), where relative paths differ.
 */
function packageRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (true) {
    const manifest = join(dir, 'package.json')
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'wasmesh') {
      return dir
    }
    const parent = dirname(dir)
    if (parent === dir) {
      throw new Error(`cannot find the wasmesh package around ${fileURLToPath(import.meta.url)}`)
    }
    dir = parent
  }
}

const root = packageRoot()

/** The built page (`npm run build:web`), shipped in the package. */
export const PAGE_DIR = join(root, 'build', 'page')

/** The example modules (`npm run build:wasm`), shipped in the package. */
export const WASM_DIR = join(root, 'build', 'wasm')
