/**
 * wasmesh for browsers: create a peer, run Wasm jobs on the network,
 * contribute compute from this tab. Same API as the Node entry (node/index.ts).
 *
 * @packageDocumentation
 */
export { createPeer, type CreatePeerOptions } from './create-peer.ts'
export * from '../protocol/public.ts'
