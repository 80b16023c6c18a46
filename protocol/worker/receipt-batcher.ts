import { MAX_RECEIPT_BATCH, RECEIPT_BATCH_QUEUED_WAIT_MS, RECEIPT_BATCH_WAIT_MS } from '../constants.ts'
import { signReceipts, type Receipt, type SignedReceipt, type Signer } from '../wire/receipt.ts'

interface Waiting {
  receipt: Receipt
  resolve: (signed: SignedReceipt) => void
  reject: (err: Error) => void
}

/** What the worker has on hand beside the receipt being signed. */
export type Backlog = () => { running: number, queued: number }

/**
 * Signs a busy worker's receipts in batches: one signature over a Merkle
 * root for all the receipts that come in while more jobs are still running
 * (held at most RECEIPT_BATCH_WAIT_MS), or longer while jobs wait in the
 * queue (RECEIPT_BATCH_QUEUED_WAIT_MS): their requesters have credit to keep
 * the pipe full, so a later receipt costs them nothing. An idle worker signs
 * at once, so a single job pays no wait.
 */
export class ReceiptBatcher {
  private readonly signer: Signer
  private readonly backlog: Backlog
  private waiting: Waiting[] = []
  private timer?: ReturnType<typeof setTimeout>

  constructor (signer: Signer, backlog: Backlog) {
    this.signer = signer
    this.backlog = backlog
  }

  async sign (receipt: Receipt): Promise<SignedReceipt> {
    const { promise, resolve, reject } = Promise.withResolvers<SignedReceipt>()
    this.waiting.push({ receipt, resolve, reject })
    const { running, queued } = this.backlog()
    if (this.waiting.length >= MAX_RECEIPT_BATCH || running + queued === 0) {
      this.flush()
    } else {
      this.timer ??= setTimeout(() => { this.flush() }, queued > 0 ? RECEIPT_BATCH_QUEUED_WAIT_MS : RECEIPT_BATCH_WAIT_MS)
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
