/** The page checks each receipt itself, with the SDK's public verifier, before showing it as verified. */
import type { RunResult, SignedReceipt } from '../../web/index.ts'

export async function receiptVerified (result: RunResult): Promise<boolean> {
  // loaded already by the time a job finished: this import only looks it up
  const { verifyReceipt } = await import('../../web/index.ts')
  const signed = result.receipts[0]?.signed
  if (signed == null) {
    return false
  }
  try {
    await verifyReceipt(signed, { job: result.job, worker: result.worker })
    return true
  } catch {
    return false
  }
}

/** Checks a failure's signed receipt (`WasmeshError.signed`) against the worker that sent it. */
export async function signedFailureVerified (signed: SignedReceipt, worker: string | undefined): Promise<boolean> {
  const { verifyReceipt } = await import('../../web/index.ts')
  try {
    await verifyReceipt(signed, worker != null ? { worker } : {})
    return true
  } catch {
    return false
  }
}
