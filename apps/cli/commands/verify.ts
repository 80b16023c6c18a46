import { readFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { text } from 'node:stream/consumers'
import { Command } from 'commander'
import { CID } from 'multiformats/cid'
import { fromString, toString } from 'uint8arrays'
import { checkOutput, decodeSignedReceipt, InvalidReceiptError, treeCid, verifyReceipt, type Receipt } from '../../../node/index.ts'
import { EXIT_JOB_FAILED, readUserFile, UsageError } from '../options.ts'
import { outFolderName, readLocalTree } from '../trees.ts'

/** What `run --json` (and a batch's receipts/<input>.json) holds that verify reads. */
interface ReceiptJson {
  job?: unknown
  /** A batch's receipt: the output's file name in the batch's --out folder (OUT/.wasmesh/receipts/x.json → OUT/x). */
  outputFile?: unknown
  worker?: unknown
  output?: unknown
  outputBase64?: unknown
  receipt?: { signed?: unknown }
}

export function verifyCommand (): Command {
  return new Command('verify')
    .description('Verify a receipt printed by `wasmesh run --json` (or kept by a batch under OUT/.wasmesh/receipts/): the worker\'s signature, that it is for the job, and the output against the signed hash. Exit 0: valid; 1: invalid; 2: bad usage.')
    .argument('<file|->', 'JSON with a `receipt` field, as `run --json` prints')
    .option('--job <cid>', 'require the receipt to be for this job (refuses a valid receipt replayed for another job)')
    .option('--output <file>', 'check this file against the output hash the worker signed (e.g. a batch output)')
    .option('--out-dir <dir>', 'check the folders `run --out-dir` wrote against the final trees (mount CIDs) the worker signed')
    .action(async (file: string, options: { job?: string, output?: string, outDir?: string }) => {
      const json = await readJson(file)
      if (typeof json.receipt?.signed !== 'string') {
        throw new UsageError(`${file} has no receipt.signed field: pass the JSON that \`wasmesh run --json\` printed`)
      }
      const job = parseCid(options.job ?? (typeof json.job === 'string' ? json.job : undefined))
      let receipt: Receipt
      try {
        ({ receipt } = await verifyReceipt(decodeSignedReceipt(fromString(json.receipt.signed, 'base64')), { ...(job != null ? { job } : {}), ...(typeof json.worker === 'string' ? { worker: json.worker } : {}) }))
        const output = options.output != null ? await readUserFile(options.output, '--output') : await outputOf(json, file)
        if (output != null) {
          await checkOutput(receipt, output)
        }
        if (typeof json.output === 'string' && output != null && options.output == null && toString(output) !== json.output) {
          throw new InvalidReceiptError('the "output" text does not match the output the receipt signs ("outputBase64"): the file was edited')
        }
        const trees = options.outDir != null ? await checkTrees(receipt, options.outDir) : undefined
        console.log(`valid receipt: job ${receipt.job.toString()} run by ${receipt.worker}, exit ${receipt.exitCode}${receipt.error != null ? ` (${receipt.error.name})` : ''}; ${output != null ? `output matches the signed hash (${output.byteLength} bytes)` : 'output not checked: pass --output FILE'}${trees ?? ''}`)
      } catch (err) {
        if (!(err instanceof InvalidReceiptError) && (err as Error).name !== 'MalformedMessageError') {
          throw err
        }
        console.error(`invalid receipt: ${(err as Error).message}`)
        process.exitCode = EXIT_JOB_FAILED
      }
    })
}

/** Checks each folder under `outDir` against the final tree the receipt signs for its mount. */
async function checkTrees (receipt: Receipt, outDir: string): Promise<string> {
  const mounts = receipt.mounts ?? []
  if (mounts.length === 0) {
    throw new UsageError('--out-dir: the receipt names no final tree (the job had no writable mount, or never ran)')
  }
  for (const mount of mounts) {
    const folder = join(outDir, outFolderName(mount.path))
    const tree = await readLocalTree(folder).catch((err: Error) => { throw new UsageError(`--out-dir: cannot read ${folder}: ${err.message}`) })
    const cid = await treeCid(tree)
    if (cid.toString() !== mount.cid.toString()) {
      throw new InvalidReceiptError(`the files in ${folder} (${cid.toString()}) are not the final tree of ${mount.path} the worker signed (${mount.cid.toString()})`)
    }
  }
  return `; ${mounts.map(mount => mount.path).join(', ')} match the signed trees`
}

/** The output the JSON carries (exact bytes, or the text), or the batch output file it names. */
async function outputOf (json: ReceiptJson, file: string): Promise<Uint8Array | undefined> {
  if (typeof json.outputBase64 === 'string') {
    return fromString(json.outputBase64, 'base64')
  }
  if (typeof json.output === 'string') {
    return fromString(json.output)
  }
  if (typeof json.outputFile === 'string' && file !== '-') {
    const path = join(dirname(file), '..', '..', basename(json.outputFile))
    try {
      return await readFile(path)
    } catch {
      throw new UsageError(`the receipt's output file ${path} cannot be read: pass it with --output FILE`)
    }
  }
  return undefined
}

async function readJson (file: string): Promise<ReceiptJson> {
  const source = file === '-' ? await text(process.stdin) : new TextDecoder().decode(await readUserFile(file, 'the receipt file'))
  try {
    const json = JSON.parse(source) as unknown
    if (json == null || typeof json !== 'object') {
      throw new Error('not an object')
    }
    return json as ReceiptJson
  } catch (err) {
    throw new UsageError(`${file} is not the JSON \`wasmesh run --json\` prints (${(err as Error).message})`)
  }
}

function parseCid (value: string | undefined): CID | undefined {
  if (value == null) {
    return undefined
  }
  try {
    return CID.parse(value)
  } catch {
    throw new UsageError(`"${value}" is not a job CID`)
  }
}
