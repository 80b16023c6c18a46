import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { Presets, SingleBar } from 'cli-progress'
import { createPeer, type RunOptions, type WasmeshError } from '../../../node/index.ts'
import { receiptJson, resultJson } from '../format.ts'
import { finishCommand } from '../lifecycle.ts'
import { EXIT_JOB_FAILED, reputationDir } from '../options.ts'
import type { RunCommandOptions } from './run.ts'

/**
 * `run --inputs DIR --out DIR`: one job per input file; outputs go under the
 * same names in `outDir`. The requester's state (identity, accepted results
 * with their receipts) lives in `outDir/.wasmesh`, so rerunning with the same
 * --out takes finished jobs from there and runs only the rest.
 */
export async function runBatch (module: Uint8Array | string, inputsDir: string, outDir: string, options: RunCommandOptions, jobOptions: Omit<RunOptions, 'module' | 'input'>): Promise<void> {
  const names = (await readdir(inputsDir, { withFileTypes: true })).filter(entry => entry.isFile()).map(entry => entry.name).sort()
  const stateDir = join(outDir, '.wasmesh')
  await mkdir(join(stateDir, 'receipts'), { recursive: true })
  await mkdir(join(stateDir, 'tmp'), { recursive: true })
  const peer = await createPeer({ bootstrap: options.bootstrap, dataDir: stateDir, reputationDir: reputationDir() })
  const bar = new SingleBar({ format: 'jobs {bar} {value}/{total} | {resumed} resumed, {failed} failed | {eta_formatted} left', stream: process.stderr, noTTYOutput: true, notTTYSchedule: 5000 }, Presets.shades_classic)
  const counts = { done: 0, resumed: 0, failed: 0, rerun: 0 }
  // every time a job is sent to a worker: checks, deciders and retries make this exceed the number of jobs
  let executions = 0
  peer.addEventListener('job:running', () => { executions++ })
  const failures: Array<{ input: string, error: { name: string, message: string } }> = []
  bar.start(names.length, 0, { resumed: 0, failed: 0 })
  const controller = new AbortController()
  const interrupt = (): void => { controller.abort(new Error('interrupted')) }
  process.once('SIGINT', interrupt)
  try {
    const inputs = (async function * () {
      for (const name of names) {
        yield await readFile(join(inputsDir, name))
      }
    })()
    for await (const r of peer.map(module, inputs, { ...jobOptions, concurrency: options.concurrency, resume: true, signal: controller.signal })) {
      const name = names[r.index] as string
      if (r.replaces === true) {
        // the output written for this input came from a worker since caught lying: this run replaces it
        counts.rerun++
        counts.done--
        if (!r.ok) {
          await rm(join(outDir, name), { force: true })
          await rm(join(stateDir, 'receipts', `${name}.json`), { force: true })
        }
      }
      if (r.ok) {
        await writeAtomically(join(outDir, name), r.result.output, stateDir)
        await writeAtomically(join(stateDir, 'receipts', `${name}.json`), JSON.stringify(resultJson(r.result, name)), stateDir)
        counts.done++
        counts.resumed += r.result.resumed ? 1 : 0
      } else {
        counts.failed++
        failures.push({ input: name, error: { name: r.error.name, message: r.error.message } })
        const { receipt, signed } = r.error as WasmeshError
        if (receipt != null && signed != null) {
          // the module's own failure, signed: kept beside the successes' receipts, checkable with `wasmesh verify`
          await writeAtomically(join(stateDir, 'receipts', `${name}.json`), JSON.stringify({ ok: false, job: receipt.job.toString(), worker: receipt.worker, error: { name: r.error.name, message: r.error.message }, receipt: receiptJson(receipt, signed) }), stateDir)
        }
      }
      if (r.replaces !== true) {
        bar.increment({ resumed: counts.resumed, failed: counts.failed })
      }
    }
  } finally {
    bar.stop()
    process.off('SIGINT', interrupt)
    await finishCommand(peer)
  }
  const workers = peer.workers().map(({ peerId, record, score }) => ({ peerId, score, ...record }))
  if (options.json === true) {
    console.log(JSON.stringify({ ok: counts.failed === 0, total: names.length, ...counts, executions, failures, workers }))
  } else {
    for (const worker of workers.filter(w => w.banned != null)) {
      console.error(`banned ${worker.peerId}: ${worker.banned?.reason ?? ''} (signed evidence kept in ${stateDir})`)
    }
    console.error(`${counts.done} of ${names.length} jobs done (${counts.resumed} from an earlier run${counts.rerun > 0 ? `, ${counts.rerun} run again after their worker was caught lying` : ''}), ${counts.failed} failed, ${executions} executions; outputs in ${outDir}`)
    for (const failure of failures) {
      console.error(`  ${failure.input}: ${failure.error.name}: ${failure.error.message}`)
    }
  }
  if (counts.failed > 0) {
    process.exitCode = EXIT_JOB_FAILED
  }
}

/**
 * Writes a file whole or not at all: into the state dir first, then renamed
 * into place, so a requester killed mid-batch never leaves a truncated
 * output or receipt behind.
 */
async function writeAtomically (path: string, data: Uint8Array | string, stateDir: string): Promise<void> {
  const temporary = join(stateDir, 'tmp', `${process.pid}-${basename(path)}`)
  await writeFile(temporary, data)
  await rename(temporary, path)
}
