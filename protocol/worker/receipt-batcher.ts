import { MAX_RECEIPT_BATCH, RECEIPT_BATCH_WAIT_MS } from '../constants.ts'
import { signReceipts, type Receipt, type SignedReceipt, type Signer } from '../wire/receipt.ts'

interface Waiting {
  receipt: Receipt
  resolve: (signed: SignedReceipt) => void
  reject: (err: Error) => void
}

/**
 * Signs a busy worker's receipts in batches: one signature over a Merkle
 * root for all the receipts that come in while more jobs are still running
 * (at most RECEIPT_BATCH_WAIT_MS apart). An idle worker signs at once, so a
 * single job pays no wait.
 */
export class ReceiptBatcher {
  private readonly signer: Signer
  /** Whether more receipts are on their way (jobs running or queued). */
  private readonly moreComing: () => boolean
  private waiting: Waiting[] = []
  private timer?: ReturnType<typeof setTimeout>

  constructor (signer: Signer, moreComing: () => boolean) {
    this.signer = signer
    this.moreComing = moreComing
  }

  async sign (receipt: Receipt): Promise<SignedReceipt> {
    const { promise, resolve, reject } = Promise.withResolvers<SignedReceipt>()
    this.waiting.push({ receipt, resolve, reject })
    if (this.waiting.length >= MAX_RECEIPT_BATCH || !this.moreComing()) {
      this.flush()
    } else {
      this.timer ??= setTimeout(() => { this.flush() }, RECEIPT_BATCH_WAIT_MS)
    }
    return promise
  }

  private flush (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    const batch = this.waiting
    this.waiting = []
    if (batch.length === 0) {
      return
    }
    signReceipts(batch.map(w => w.receipt), this.signer).then(signed => {
      batch.forEach((w, i) => { w.resolve(signed[i] as SignedReceipt) })
    }, (err: Error) => {
      for (const w of batch) {
        w.reject(err)
      }
    })
  }
}
