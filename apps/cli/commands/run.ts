import { text } from 'node:stream/consumers'
import { Command, Option } from 'commander'
import { fromString } from 'uint8arrays'
import { createPeer, type RunOptions, type WasmeshError } from '../../../node/index.ts'
import { failureJson, resultJson, stderrTail } from '../format.ts'
import { finishCommand } from '../lifecycle.ts'
import { bootstrapOption, EXIT_JOB_FAILED, EXIT_NETWORK, parseEnv, positive, readUserFile, reputationDir, UsageError, whole } from '../options.ts'
import { CID } from 'multiformats/cid'
import { outFolderName, parseMount, writeMountTrees } from '../trees.ts'
import { runBatch } from './run-batch.ts'

export interface RunCommandOptions {
  input?: string
  inputs?: string
  out?: string
  concurrency: number
  arg: string[]
  env: string[]
  mount: string[]
  outDir?: string
  abi: 'wasi' | 'direct'
  bootstrap?: string[]
  timeout: number
  memory: number
  maxOutput: number
  redundancy: number
  json?: boolean
  inputCid?: string
  storeOutput?: number
}

export function runCommand (): Command {
  return new Command('run')
    .description('Run a Wasm module as a job on the network, verify the receipt, and write the job\'s stdout to stdout. With --inputs, run one job per file of a folder.')
    .argument('<module>', 'a .wasm file, a module CID, or an http(s) URL')
    .option('-i, --input <file|->', 'the job\'s stdin: a file, or - for this process\'s stdin')
    .option('--inputs <dir>', 'batch: one job per file in this folder (needs --out)')
    .option('--out <dir>', 'batch: write each output under its input\'s name; rerun with the same --out to resume')
    .option('--concurrency <n>', 'batch: jobs in flight at once', whole, 64)
    .option('--arg <value...>', 'arguments passed to the module (argv[1…])', [])
    .option('--env <KEY=VALUE...>', 'environment variables for the module', [])
    .option('--mount <spec...>', 'a directory the module sees: /data=<dir|file|CID> (read-only), /out (empty, writable), /work=<dir|file|CID>:rw (writable, seeded)', [])
    .option('--out-dir <dir>', 'write each writable mount\'s final tree here, one folder per mount (/out → out, / → root)')
    .addOption(new Option('--abi <abi>', 'calling convention').choices(['wasi', 'direct']).default('wasi'))
    .addOption(bootstrapOption())
    .option('--timeout <ms>', 'wall-time limit of the job', whole, 30_000)
    .option('--memory <MiB>', 'Wasm memory limit', whole, 256)
    .option('--max-output <bytes>', 'output size limit', whole, 16 * 1024 * 1024)
    .option('--redundancy <k>', 'run on k distinct workers and accept the output a majority agrees on', whole, 1)
    .option('--json', 'print one JSON object (output, receipt, timings) instead of raw output')
    .option('--input-cid <cid>', 'the job\'s stdin: content stored on the network (wasmesh store), fetched from its holders')
    .option('--store-output <k>', 'keep the verified output on K storage peers (like wasmesh store) and print its CID', positive)
    .action(async (modulePath: string, options: RunCommandOptions) => {
      const module = /^(https?:|bafy|bafk|Qm)/.test(modulePath) ? modulePath : await readUserFile(modulePath, 'the module')
      const jobOptions: Omit<RunOptions, 'module' | 'input'> = {
        abi: options.abi,
        args: options.arg,
        env: parseEnv(options.env),
        limits: { timeoutMs: options.timeout, memoryBytes: options.memory * 1024 * 1024, outputBytes: options.maxOutput },
        redundancy: options.redundancy
      }
      if (options.mount.length > 0) {
        jobOptions.mounts = await Promise.all(options.mount.map(parseMount))
      }
      if (options.outDir != null && !(jobOptions.mounts ?? []).some(mount => mount.writable === true)) {
        throw new UsageError('--out-dir needs a writable mount (--mount /out, or --mount /work=<dir>:rw)')
      }
      if (options.inputs != null || options.out != null) {
        if (options.mount.length > 0) {
          throw new UsageError('a batch (--inputs) cannot take --mount yet')
        }
        if (options.inputs == null || options.out == null) {
          throw new UsageError('a batch needs both --inputs <dir> and --out <dir>')
        }
        await runBatch(module, options.inputs, options.out, options, jobOptions)
        return
      }
      if (options.input != null && options.inputCid != null) {
        throw new UsageError('give --input or --input-cid, not both')
      }
      const input = options.inputCid != null ? parseCid(options.inputCid) : options.input == null ? undefined : options.input === '-' ? fromString(await text(process.stdin)) : await readUserFile(options.input, 'the --input file', 'give a file, or - for this process\'s stdin')
      await runOne(module, input, options, jobOptions)
    })
}

async function runOne (module: Uint8Array | string, input: Uint8Array | CID | undefined, options: RunCommandOptions, jobOptions: Omit<RunOptions, 'module' | 'input'>): Promise<void> {
  const peer = await createPeer({ bootstrap: options.bootstrap, reputationDir: reputationDir() })
  try {
    const result = await peer.run({ module, input, ...jobOptions })
    if (options.outDir != null) {
      await writeMountTrees(result.mounts, options.outDir)
    }
    const stored = options.storeOutput != null ? await peer.store(result.output, { replicas: options.storeOutput }) : undefined
    if (options.json === true) {
      console.log(JSON.stringify({ ...resultJson(result), ...(stored != null ? { stored: { cid: stored.cid.toString(), holders: stored.holders.map(h => h.peerId) } } : {}) }))
    } else {
      process.stdout.write(result.output)
      console.error(`job ${result.job.toString()} ran on ${result.worker} in ${result.durationMs.toFixed(1)} ms (exec ${result.receipt.stats.execMs.toFixed(1)} ms${result.receipt.stats.moduleCached ? ', module cached' : ''}); receipt verified`)
      for (const mount of result.mounts) {
        console.error(`${mount.path}: ${mount.cid.toString()}${options.outDir != null ? ` → ${options.outDir}/${outFolderName(mount.path)}` : ''}`)
      }
      if (stored != null) {
        console.error(`output stored as ${stored.cid.toString()} on ${stored.holders.length} holder(s): ${stored.holders.map(h => h.peerId).join(' ')}`)
      }
    }
  } catch (err) {
    const receipt = (err as WasmeshError).receipt
    const mounts = (err as WasmeshError).mounts ?? []
    if (options.outDir != null && mounts.length > 0) {
      // what a failed program wrote is often what explains it
      await writeMountTrees(mounts, options.outDir)
    }
    if (options.json === true) {
      console.log(JSON.stringify(failureJson(err as Error)))
    } else {
      if ((err as WasmeshError).output != null) {
        process.stdout.write((err as WasmeshError).output as Uint8Array)
      }
      const stderr = stderrTail(receipt)
      console.error(`${(err as Error).name}: ${(err as Error).message}${receipt != null ? ` (signed by ${receipt.worker} for job ${receipt.job.toString()})` : ''}${stderr !== '' ? `\nthe job's stderr ended with:\n${stderr.replace(/^/gm, '  ')}` : ''}`)
      if ((err as WasmeshError).hint != null && (err as WasmeshError).hint !== '') {
        console.error(`hint: ${(err as WasmeshError).hint}`)
      }
    }
    process.exitCode = receipt != null ? EXIT_JOB_FAILED : EXIT_NETWORK
  } finally {
    await finishCommand(peer)
  }
}

function parseCid (value: string): CID {
  try {
    return CID.parse(value)
  } catch (err) {
    throw new UsageError(`--input-cid ${value}: not a CID (${(err as Error).message})`)
  }
}
