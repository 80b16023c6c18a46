import { toString } from 'uint8arrays'
import { encodeSignedReceipt, type Peer, type Receipt, type RunResult, type SignedReceipt } from '../../node/index.ts'

/** A receipt as `--json` prints it; `signed` (base64) is what `wasmesh verify` checks. */
export function receiptJson (receipt: Receipt, signed?: SignedReceipt): Record<string, unknown> {
  return {
    job: receipt.job.toString(),
    worker: receipt.worker,
    exitCode: receipt.exitCode,
    ...(receipt.error != null ? { error: receipt.error } : {}),
    outputHash: toString(receipt.outputHash, 'base16'),
    outputSize: receipt.outputSize,
    stats: receipt.stats,
    timestamp: receipt.timestamp,
    ...(signed != null ? { signed: toString(encodeSignedReceipt(signed), 'base64') } : {})
  }
}

/**
 * A verified result as `--json` prints it. `outputFile` instead of the
 * output itself: for a batch, whose outputs are written as files beside
 * (and may be far too big for a JSON string); `wasmesh verify` checks that
 * file, relative to the receipt's folder's parent's parent.
 */
export function resultJson (result: RunResult, outputFile?: string): Record<string, unknown> {
  const first = result.receipts[0]
  return {
    ok: true,
    job: result.job.toString(),
    worker: result.worker,
    durationMs: result.durationMs,
    ...(outputFile != null ? { outputFile } : { output: toString(result.output), outputBase64: toString(result.output, 'base64') }),
    receipt: receiptJson(result.receipt, first?.signed),
    receipts: result.receipts.length
  }
}

/** One line per job served: every line is a synchronous write, which costs more than a tiny job. */
export function logServedJobs (peer: Peer): void {
  peer.addEventListener('work:start', event => { console.log(`job started ${event.detail.job} from ${event.detail.requester}`) })
}
