/** The page checks each receipt itself, with the SDK's public verifier, before showing it as verified. */
import type { RunResult } from '../../web/index.ts'

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
