import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { repoRoot } from './helpers/processes.ts'

/** Every .ts file under `dir`, as absolute paths. */
async function sources (dir: string): Promise<string[]> {
  const entries = await readdir(join(repoRoot, dir), { recursive: true, withFileTypes: true })
  return entries.filter(e => e.isFile() && e.name.endsWith('.ts')).map(e => join(e.parentPath, e.name))
}

/** The relative .ts imports of a file (static, dynamic and type-only), resolved to absolute paths. */
async function importsOf (file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8')
  return [...text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+\.ts)['"]/g)].map(m => resolve(dirname(file), m[1] as string))
}

describe('the layout', () => {
  it('protocol/ has no import cycle', async () => {
    const files = await sources('protocol')
    const graph = new Map(await Promise.all(files.map(async f => [f, await importsOf(f)] as const)))
    const state = new Map<string, 'visiting' | 'done'>()
    const cycles: string[] = []
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === 'done') return
      if (state.get(file) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(file)), file].map(f => relative(repoRoot, f)).join(' → '))
        return
      }
      state.set(file, 'visiting')
      for (const next of graph.get(file) ?? []) {
        visit(next, [...path, file])
      }
      state.set(file, 'done')
    }
    for (const file of files) visit(file, [])
    assert.deepEqual(cycles, [])
  })

  it('protocol/ imports nothing from node/, web/ or apps/, and no node: module', async () => {
    for (const file of await sources('protocol')) {
      const text = await readFile(file, 'utf8')
      assert.doesNotMatch(text, /from\s+['"]node:/, relative(repoRoot, file))
      for (const target of await importsOf(file)) {
        assert.ok(relative(join(repoRoot, 'protocol'), target).split('/')[0] !== '..', `${relative(repoRoot, file)} imports ${relative(repoRoot, target)}`)
      }
    }
  })

  it('apps use only the public API: the package entries, never the adapters\' or the core\'s insides', async () => {
    // the one exception: the CLI's bin checks the Node version before anything loads the SDK, which an old Node cannot
    const beforeTheSdk = new Set(['apps/cli/bin.ts → node/node-version.ts'])
    for (const file of await sources('apps')) {
      for (const target of await importsOf(file)) {
        const rel = relative(repoRoot, target)
        if (/^(node|web|protocol)\//.test(rel) && !beforeTheSdk.has(`${relative(repoRoot, file)} → ${rel}`)) {
          assert.match(rel, /^(node\/index|web\/index|protocol\/public)\.ts$/, `${relative(repoRoot, file)} reaches into ${rel}: use the package entry`)
        }
      }
    }
  })

  it('node/ and web/ hold adapters only: no CLI, no page', async () => {
    const adapters = [...await sources('node'), ...await sources('web')].map(f => relative(repoRoot, f))
    assert.deepEqual(adapters.filter(f => /(^|\/)(cli|app|apps|apps-panel|http-server|page)\.ts$/.test(f)), [])
  })
})
