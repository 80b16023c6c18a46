/**
 * wasmesh for Node: create a peer, run Wasm jobs on the network, contribute
 * compute. The browser build (`web/index.ts`) exports the same API.
 *
 * @packageDocumentation
 */
import { unsupportedNodeMessage } from './node-version.ts'

// one clear line on an old Node, before anything fails far from the cause
const unsupported = unsupportedNodeMessage()
if (unsupported != null) {
  throw new Error(unsupported)
}

export { createPeer, type CreatePeerOptions } from './create-peer.ts'
export { startBootstrap, type BootstrapHealth, type BootstrapNode, type BootstrapOptions } from './bootstrap.ts'
export { localNetworkFile, wasmeshHome } from './home.ts'
export type { TlsFiles } from './libp2p-options.ts'
export { MIN_NODE_VERSION } from './node-version.ts'
export * from '../protocol/public.ts'
