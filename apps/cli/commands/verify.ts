import { readFile } from 'node:fs/promises'
import { text } from 'node:stream/consumers'
import { Command } from 'commander'
import { CID } from 'multiformats/cid'
import { fromString } from 'uint8arrays'
import { decodeSignedReceipt, verifyReceipt } from '../../../node/index.ts'
import { UsageError } from '../options.ts'

export function verifyCommand (): Command {
  return new Command('verify')
    .description('Verify a receipt printed by `wasmesh run --json`, from its signature and the worker\'s peer id alone.')
    .argument('<file|->', 'JSON with a `receipt` field, as `run --json` prints')
    .option('--job <cid>', 'also require the receipt to be for this job (refuses a valid receipt replayed for another job)')
    .action(async (file: string, options: { job?: string }) => {
      const json = JSON.parse(file === '-' ? await text(process.stdin) : await readFile(file, 'utf8')) as { receipt?: { signed?: string } }
      if (typeof json.receipt?.signed !== 'string') {
        throw new UsageError('the file has no receipt.signed field: pass the JSON that `wasmesh run --json` printed')
      }
      const { receipt } = await verifyReceipt(decodeSignedReceipt(fromString(json.receipt.signed, 'base64')), options.job != null ? { job: CID.parse(options.job) } : {})
      console.log(`valid receipt: job ${receipt.job.toString()} run by ${receipt.worker}, exit ${receipt.exitCode}${receipt.error != null ? ` (${receipt.error.name})` : ''}`)
    })
}
