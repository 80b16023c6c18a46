import type { ExecuteRequest, ResourceLimits } from '../../protocol/runtime/executor.ts'

/** An executor request for a WASI module given as bytes: no args, no env, empty stdin unless `extra` says otherwise. */
export function executeRequest (cid: string, bytes: Uint8Array, limits: ResourceLimits, extra: Partial<ExecuteRequest> = {}): ExecuteRequest {
  return {
    module: { cid, load: async () => bytes },
    abi: 'wasi',
    args: [],
    env: {},
    input: new Uint8Array(0),
    limits,
    ...extra
  }
}
