/**
 * @wasmer/sdk in browsers: imported on the first WASIX job only, from the
 * unbundled copy the page serves (vite.config.ts copies it to
 * vendor/wasmer-sdk/): bundled, the SDK's workers lose their relative
 * imports and it fails with "Scheduler is dead". It needs a cross-origin
 * isolated page (SharedArrayBuffer), which the wasmesh page is.
 */
import { WasixRunner, type WasmerSdk } from '../protocol/runtime/wasix.ts'

/** Where the wasmesh page serves the SDK, relative to the page. */
export const DEFAULT_WASMER_SDK_URL = './vendor/wasmer-sdk/dist/index.js'

export function webWasixRunner (sdkUrl: string): WasixRunner {
  return new WasixRunner(async () => await import(/* @vite-ignore */ sdkUrl) as WasmerSdk)
}
