import { readFile } from 'node:fs/promises'
import { BootstrapError } from '../protocol/errors.ts'
import { localNetworkFile } from './home.ts'

/**
 * Which bootstrap nodes to join through when none are given:
 * `$WASMESH_BOOTSTRAP` (comma or space separated), else the local network
 * that `wasmesh start` (npm start) runs.
 */
export async function resolveBootstrap (): Promise<string[]> {
  const fromEnv = process.env.WASMESH_BOOTSTRAP?.split(/[\s,]+/).filter(addr => addr !== '') ?? []
  if (fromEnv.length > 0) {
    return fromEnv
  }
  const file = localNetworkFile()
  try {
    const network = JSON.parse(await readFile(file, 'utf8')) as { bootstrap?: unknown }
    if (Array.isArray(network.bootstrap) && network.bootstrap.length > 0) {
      return network.bootstrap.map(String)
    }
  } catch {
    // no local network running
  }
  throw new BootstrapError('no bootstrap node given: pass --bootstrap <multiaddr>, set WASMESH_BOOTSTRAP, or start a local network with `npm start`')
}
