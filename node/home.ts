import { homedir } from 'node:os'
import { join } from 'node:path'

/** Where wasmesh keeps its state: `$WASMESH_HOME`, else `~/.wasmesh`. */
export function wasmeshHome (): string {
  return process.env.WASMESH_HOME ?? join(homedir(), '.wasmesh')
}

/** The file `wasmesh start` writes so other commands find the local network. */
export function localNetworkFile (): string {
  return join(wasmeshHome(), 'local-network.json')
}
