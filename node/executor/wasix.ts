/** @wasmer/sdk for Node: imported on the first WASIX job only. */
import { WasixRunner, type WasmerSdk } from '../../protocol/runtime/wasix.ts'

export function nodeWasixRunner (): WasixRunner {
  return new WasixRunner(async () => await import('@wasmer/sdk/node') as unknown as WasmerSdk)
}
