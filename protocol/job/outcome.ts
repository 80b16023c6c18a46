import { toString as bytesToString } from 'uint8arrays/to-string'
import type { Receipt } from '../wire/receipt.ts'

/** Receipts agree when they report the same output, exit code and failure: this key says which. */
export function outcomeKey (receipt: Pick<Receipt, 'outputHash' | 'exitCode' | 'error'>): string {
  return `${bytesToString(receipt.outputHash, 'base64')}:${receipt.exitCode}:${receipt.error?.name ?? ''}`
}
