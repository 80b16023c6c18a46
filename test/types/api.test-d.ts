/**
 * Type tests of the public API, checked by `tsc -p test` (npm run typecheck):
 * a change to what either entry point exports, or to the shapes users
 * destructure, fails the typecheck. Nothing here runs.
 */
import { expectTypeOf } from 'expect-type'
import type { CID } from 'multiformats/cid'
import * as node from '../../node/index.ts'
import * as web from '../../web/index.ts'
import type { Contribution, JobEvent, MapResult, Peer, PeerCapacity, PeerStatus, Receipt, RunOptions, RunResult, SignedReceipt, VerifiedReceipt, StoreOptions, StoreResult, Holding } from '../../web/index.ts'

declare const peer: Peer

// createPeer: Node takes optional options (bootstrap from the environment), the browser needs bootstrap addresses
expectTypeOf(node.createPeer).parameters.toEqualTypeOf<[options?: node.CreatePeerOptions]>()
expectTypeOf(node.createPeer).returns.resolves.toEqualTypeOf<Peer>()
expectTypeOf(web.createPeer).parameters.toEqualTypeOf<[options: web.CreatePeerOptions]>()
expectTypeOf(web.createPeer).returns.resolves.toEqualTypeOf<Peer>()
expectTypeOf<node.Peer>().toEqualTypeOf<web.Peer>()

expectTypeOf<node.CreatePeerOptions['bootstrap']>().toEqualTypeOf<readonly string[] | undefined>()
expectTypeOf<node.CreatePeerOptions['dataDir']>().toEqualTypeOf<string | undefined>()
expectTypeOf<node.CreatePeerOptions['listen']>().toEqualTypeOf<string[] | undefined>()
expectTypeOf<node.CreatePeerOptions['contribute']>().toEqualTypeOf<{ threads?: number, storageBytes?: number } | undefined>()
expectTypeOf<node.CreatePeerOptions['signal']>().toEqualTypeOf<AbortSignal | undefined>()
expectTypeOf<web.CreatePeerOptions['bootstrap']>().toEqualTypeOf<readonly string[]>()
expectTypeOf<web.CreatePeerOptions['storage']>().toEqualTypeOf<string | false | undefined>()
expectTypeOf<web.CreatePeerOptions['reservationTimeoutMs']>().toEqualTypeOf<number | undefined>()
expectTypeOf<web.CreatePeerOptions['contribute']>().toEqualTypeOf<{ threads?: number, storageBytes?: number } | undefined>()
expectTypeOf<web.CreatePeerOptions['signal']>().toEqualTypeOf<AbortSignal | undefined>()
expectTypeOf({ bootstrap: ['/dns4/example.org/tcp/443/wss/p2p/12D3KooW'] }).toExtend<web.CreatePeerOptions>()
expectTypeOf({}).toExtend<node.CreatePeerOptions>()
expectTypeOf({}).not.toExtend<web.CreatePeerOptions>()
// Node-only and browser-only exports
expectTypeOf(node).toHaveProperty('startBootstrap')
expectTypeOf(web).not.toHaveProperty('startBootstrap')
expectTypeOf(web).toHaveProperty('defineContributeElement')
expectTypeOf(node).not.toHaveProperty('defineContributeElement')

// run()
expectTypeOf(peer.run).parameter(0).toEqualTypeOf<RunOptions>()
expectTypeOf(peer.run).returns.resolves.toEqualTypeOf<RunResult>()
expectTypeOf<RunOptions['module']>().toEqualTypeOf<Uint8Array | CID | URL | string>()
expectTypeOf<RunOptions['input']>().toEqualTypeOf<Uint8Array | string | CID | undefined>()
expectTypeOf<RunOptions['abi']>().toEqualTypeOf<'wasi' | 'direct' | undefined>()
expectTypeOf<RunOptions['args']>().toEqualTypeOf<string[] | undefined>()
expectTypeOf<RunOptions['env']>().toEqualTypeOf<Record<string, string> | undefined>()
expectTypeOf<RunOptions['limits']>().toEqualTypeOf<{ timeoutMs?: number, memoryBytes?: number, outputBytes?: number } | undefined>()
expectTypeOf<RunOptions['redundancy']>().toEqualTypeOf<number | undefined>()
expectTypeOf<RunOptions['signal']>().toEqualTypeOf<AbortSignal | undefined>()
expectTypeOf<RunResult['job']>().toEqualTypeOf<CID>()
expectTypeOf<RunResult['output']>().toEqualTypeOf<Uint8Array>()
expectTypeOf<RunResult['text']>().toEqualTypeOf<() => string>()
expectTypeOf<RunResult['receipt']>().toEqualTypeOf<Receipt>()
expectTypeOf<RunResult['receipts']>().toEqualTypeOf<VerifiedReceipt[]>()
expectTypeOf<RunResult['worker']>().toEqualTypeOf<string>()
expectTypeOf<RunResult['durationMs']>().toEqualTypeOf<number>()
expectTypeOf<Receipt['worker']>().toEqualTypeOf<string>()
expectTypeOf<Receipt['exitCode']>().toEqualTypeOf<number>()
expectTypeOf<Receipt['stats']['execMs']>().toEqualTypeOf<number>()
expectTypeOf<VerifiedReceipt>().toEqualTypeOf<{ receipt: Receipt, signed: SignedReceipt }>()
expectTypeOf(web.verifyReceipt).toEqualTypeOf(node.verifyReceipt)
expectTypeOf(web.verifyReceipt).parameters.toEqualTypeOf<[signed: SignedReceipt, expect?: { job?: CID, worker?: string }]>()
expectTypeOf(web.verifyReceipt).returns.resolves.toEqualTypeOf<VerifiedReceipt>()

// map(): results in completion order, a union narrowed by `ok`
expectTypeOf(peer.map).returns.toEqualTypeOf<AsyncGenerator<MapResult>>()
expectTypeOf<MapResult>().toEqualTypeOf<{ index: number, ok: true, result: RunResult, replaces?: true } | { index: number, ok: false, error: Error, replaces?: true }>()
declare const mapped: MapResult
if (mapped.ok) {
  expectTypeOf(mapped.result).toEqualTypeOf<RunResult>()
} else {
  expectTypeOf(mapped.error).toEqualTypeOf<Error>()
}

// contribute, status
expectTypeOf(peer.contribute).parameters.toEqualTypeOf<[options?: { threads?: number, storageBytes?: number }]>()
expectTypeOf(peer.contribution).toEqualTypeOf<Contribution | undefined>()
expectTypeOf(peer.status).toEqualTypeOf<PeerStatus>()
expectTypeOf<PeerStatus>().toEqualTypeOf<'starting' | 'started' | 'stopping' | 'stopped'>()
expectTypeOf(peer.peers()).toEqualTypeOf<PeerCapacity[]>()

// events: each listener gets a CustomEvent with a typed detail
peer.addEventListener('peers', event => { expectTypeOf(event.detail).toEqualTypeOf<PeerCapacity[]>() })
peer.addEventListener('connections', event => { expectTypeOf(event.detail).toEqualTypeOf<number>() })
peer.addEventListener('contribution', event => { expectTypeOf(event.detail).toEqualTypeOf<Contribution | undefined>() })
peer.addEventListener('job:done', event => { expectTypeOf(event.detail).toEqualTypeOf<JobEvent>() })
peer.addEventListener('job:failed', event => { expectTypeOf(event.detail.error).toEqualTypeOf<Error | undefined>() })
peer.addEventListener('work:start', event => {
  expectTypeOf(event.detail.job).toEqualTypeOf<string>()
  expectTypeOf(event.detail.requester).toEqualTypeOf<string>()
})
expectTypeOf<JobEvent>().toEqualTypeOf<{ job: string, worker?: string, error?: Error, durationMs?: number }>()

// errors: one class per failure mode; its static NAME is the `name` its instances carry, to match on
expectTypeOf<typeof web.TimeLimitError.NAME>().toEqualTypeOf<'TimeLimitError'>()
expectTypeOf<typeof web.MemoryLimitError.NAME>().toEqualTypeOf<'MemoryLimitError'>()
expectTypeOf<typeof web.OutputLimitError.NAME>().toEqualTypeOf<'OutputLimitError'>()
expectTypeOf<typeof web.WasmTrapError.NAME>().toEqualTypeOf<'WasmTrapError'>()
expectTypeOf<typeof web.NonZeroExitError.NAME>().toEqualTypeOf<'NonZeroExitError'>()
expectTypeOf<typeof web.InvalidModuleError.NAME>().toEqualTypeOf<'InvalidModuleError'>()
expectTypeOf<typeof web.ForbiddenImportError.NAME>().toEqualTypeOf<'ForbiddenImportError'>()
expectTypeOf<typeof web.NoWorkersError.NAME>().toEqualTypeOf<'NoWorkersError'>()
expectTypeOf<typeof web.JobFailedError.NAME>().toEqualTypeOf<'JobFailedError'>()
expectTypeOf<typeof web.BootstrapError.NAME>().toEqualTypeOf<'BootstrapError'>()
expectTypeOf<typeof web.InvalidReceiptError.NAME>().toEqualTypeOf<'InvalidReceiptError'>()
expectTypeOf<web.TimeLimitError>().toExtend<web.WasmeshError>()
expectTypeOf<web.WasmeshError>().toExtend<Error>()
expectTypeOf<web.WasmeshError['name']>().toEqualTypeOf<string>()
expectTypeOf<web.WasmeshError['retryable']>().toEqualTypeOf<boolean>()
expectTypeOf<web.WasmeshError['receipt']>().toEqualTypeOf<Receipt | undefined>()
expectTypeOf<web.WasmeshError['output']>().toEqualTypeOf<Uint8Array | undefined>()
expectTypeOf<web.JobFailedError['attempts']>().toEqualTypeOf<readonly Error[]>()
expectTypeOf(web.TimeLimitError).toEqualTypeOf(node.TimeLimitError)

// <wasmesh-contribute>
expectTypeOf(web.defineContributeElement).returns.toEqualTypeOf<typeof web.ContributeElement>()
expectTypeOf(document.querySelector('wasmesh-contribute')).toEqualTypeOf<web.ContributeElement | null>()
expectTypeOf<web.ContributeElement>().toExtend<HTMLElement>()
expectTypeOf<web.ContributeElement['peer']>().toEqualTypeOf<Peer | undefined>()
expectTypeOf<web.ContributeElement['state']>().toEqualTypeOf<web.ContributeState>()
expectTypeOf<web.ContributeState>().toEqualTypeOf<'off' | 'waiting' | 'paused' | 'on' | 'error'>()
expectTypeOf<web.ContributeChoice>().toEqualTypeOf<{ enabled: boolean, threads: number }>()

// storage
expectTypeOf(peer.store).parameters.toEqualTypeOf<[content: Uint8Array | CID | string, options?: StoreOptions]>()
expectTypeOf(peer.store).returns.resolves.toEqualTypeOf<StoreResult>()
expectTypeOf(peer.holders).returns.resolves.toEqualTypeOf<Holding[]>()
expectTypeOf(peer.get).returns.resolves.toEqualTypeOf<Uint8Array>()
