import { InvalidModuleError } from '../errors.ts'
import type { Abi } from './executor.ts'
import { prepareModule } from './prepare.ts'
import type { MemoryLimits } from './prepare.ts'
import { checkModule } from './run.ts'

/**
 * Checks, patches (see prepareModule) and compiles a module for one ABI and
 * memory limit. The result depends on both, so cache it under both.
 */
export async function compileModule (bytes: Uint8Array, abi: Abi, limits: MemoryLimits): Promise<WebAssembly.Module> {
  const patched = prepareModule(bytes, abi, limits)
  let module: WebAssembly.Module
  try {
    module = await WebAssembly.compile(patched)
  } catch (err) {
    if (err instanceof WebAssembly.CompileError) {
      throw new InvalidModuleError(`the module did not compile: ${err.message}`, { cause: err })
    }
    throw err
  }
  checkModule(module, abi)
  return module
}
