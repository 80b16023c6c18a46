/**
 * wasmesh for browsers: create a peer, run Wasm jobs on the network,
 * contribute compute from this tab, and let visitors opt in with the
 * `<wasmesh-contribute>` element. Same API as the Node entry (node/index.ts).
 *
 * @packageDocumentation
 */
export { createPeer, type CreatePeerOptions } from './create-peer.ts'
export { ContributeElement, defineContributeElement, type ContributeChoice, type ContributeState } from './contribute-element.ts'
export { serveFunctions, type ServeFunctionsOptions, type FunctionsBridge } from './functions-bridge.ts'
export * from '../protocol/public.ts'
