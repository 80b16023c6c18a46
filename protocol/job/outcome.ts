import { toString as bytesToString } from 'uint8arrays/to-string'
import type { Receipt } from '../wire/receipt.ts'

/**
 * Receipts agree when they report the same output, exit code, failure and
 * writable mounts' final trees (by CID): this key says which.
 */
export function outcomeKey (receipt: Pick<Receipt, 'outputHash' | 'exitCode' | 'error' | 'mounts'>): string {
  const mounts = receipt.mounts?.map(mount => `${mount.path}=${mount.cid.toString()}`).join(',') ?? ''
  return `${bytesToString(receipt.outputHash, 'base64')}:${receipt.exitCode}:${receipt.error?.name ?? ''}:${mounts}`
}
