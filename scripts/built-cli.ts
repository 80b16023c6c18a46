/**
 * The built CLI (dist/apps/cli/bin.js, the bundle users install) and whether
 * it is older than the sources it is built from. The test networks run it:
 * it starts in about a third of the CPU time of the TypeScript sources, and
 * a suite starts hundreds of processes.
 */
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

export const builtCliPath = join(root, 'dist', 'apps', 'cli', 'bin.js')

const SOURCES = ['protocol', 'node', 'web', join('apps', 'cli'), 'package.json']

/** Why the built CLI cannot be trusted to match the sources, or undefined when it can. */
export function staleBuiltCli (): string | undefined {
  if (!existsSync(builtCliPath)) {
    return `${builtCliPath} is missing`
  }
  const built = statSync(builtCliPath).mtimeMs
  const newer = SOURCES.map(source => join(root, source)).find(path => newestChange(path) > built)
  return newer != null ? `${newer} changed after ${builtCliPath} was built` : undefined
}

function newestChange (path: string): number {
  const info = statSync(path)
  if (!info.isDirectory()) {
    return info.mtimeMs
  }
  return Math.max(info.mtimeMs, ...readdirSync(path).map(name => newestChange(join(path, name))))
}
