/**
 * wasmesh for Node: create a peer, run Wasm jobs on the network, contribute
 * compute. The browser build (`web/index.ts`) exports the same API.
 *
 * @packageDocumentation
 */
export { createPeer, type CreatePeerOptions } from './create-peer.ts'
export { startBootstrap, type BootstrapNode, type BootstrapOptions } from './bootstrap.ts'
export { localNetworkFile, wasmeshHome } from './home.ts'
export * from '../protocol/public.ts'
