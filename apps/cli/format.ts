import { toString } from 'uint8arrays'
import { encodeSignedReceipt, type Peer, type Receipt, type RunResult, type SignedReceipt, type WasmeshError } from '../../node/index.ts'
import { log } from './log.ts'

/** Lines of the job's stderr shown beside a failure: the assertion or panic message is at the end. */
const STDERR_TAIL_LINES = 10

/** A receipt as `--json` prints it; `signed` (base64) is what `wasmesh verify` checks. */
export function receiptJson (receipt: Receipt, signed?: SignedReceipt): Record<string, unknown> {
  return {
    job: receipt.job.toString(),
    worker: receipt.worker,
    exitCode: receipt.exitCode,
    ...(receipt.error != null ? { error: receipt.error } : {}),
    outputHash: toString(receipt.outputHash, 'base16'),
    outputSize: receipt.outputSize,
    ...(receipt.mounts != null ? { mounts: receipt.mounts.map(mount => ({ path: mount.path, cid: mount.cid.toString() })) } : {}),
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
    ...(result.mounts.length > 0 ? { mounts: result.mounts.map(mount => ({ path: mount.path, cid: mount.cid.toString() })) } : {}),
    receipt: receiptJson(result.receipt, first?.signed),
    receipts: result.receipts.length
  }
}

/** The last lines of the job's stderr, as the failing receipt signs it; '' when there is none. */
export function stderrTail (receipt: Receipt | undefined): string {
  if (receipt == null || receipt.stderr.byteLength === 0) {
    return ''
  }
  return toString(receipt.stderr).trimEnd().split('\n').slice(-STDERR_TAIL_LINES).join('\n')
}

/**
 * A failure as `--json` prints it: the error's name, message and hint, and
 * when the job itself failed, what it wrote to stdout, the tail of its
 * stderr and the signed receipt.
 */
export function failureJson (err: Error): Record<string, unknown> {
  const { receipt, signed, hint, output, mounts } = err as Partial<WasmeshError>
  const stderr = stderrTail(receipt)
  return {
    ok: false,
    error: { name: err.name, message: err.message, ...(hint != null && hint !== '' ? { hint } : {}) },
    ...(output != null ? { output: toString(output) } : {}),
    ...(stderr !== '' ? { stderr } : {}),
    ...(mounts != null && mounts.length > 0 ? { mounts: mounts.map(mount => ({ path: mount.path, cid: mount.cid.toString() })) } : {}),
    ...(receipt != null ? { receipt: receiptJson(receipt, signed) } : {})
  }
}

/** One line per job served (every line is a synchronous write, which costs more than a tiny job), and per storage event. */
export function logServedJobs (peer: Peer): void {
  peer.addEventListener('work:start', event => { log.info(`job started ${event.detail.job} from ${event.detail.requester}`, { job: event.detail.job, requester: event.detail.requester }) })
  peer.addEventListener('pinned', event => { log.info(`pinned ${event.detail.cid} (${event.detail.size} bytes) for ${event.detail.owner}`, { cid: event.detail.cid, size: event.detail.size, owner: event.detail.owner }) })
  peer.addEventListener('repaired', event => { log.info(`repaired ${event.detail.cid}: new replicas on ${event.detail.placed.join(' ')}`, { cid: event.detail.cid, placed: event.detail.placed.join(' ') }) })
  peer.addEventListener('check:failed', event => { log.warn(`check failed: ${event.detail.holder} for ${event.detail.cid}: ${event.detail.reason}`, { holder: event.detail.holder, cid: event.detail.cid, reason: event.detail.reason }) })
}
