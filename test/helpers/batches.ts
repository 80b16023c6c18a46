/** CLI batches (`wasmesh run --inputs --out`) on a ProcessNetwork, and what to check of their outputs. */
import assert from 'node:assert/strict'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { wasmPath } from '../../scripts/build-wasm.ts'
import type { NodeProcess, ProcessNetwork } from './processes.ts'

/** The JSON a CLI batch prints at the end. */
export interface BatchSummary {
  ok: boolean
  total: number
  done: number
  resumed: number
  failed: number
  rerun: number
  /** Times a job was sent to a worker: checks, deciders and retries included. */
  executions: number
  failures: Array<{ input: string, error: { name: string, message: string } }>
  workers: Array<{ peerId: string, score: number, confirmed: number, disagreements: number, banned?: { reason: string } }>
}

/**
 * Writes `count` input files under the network's home and returns the folder,
 * with what echo.wasm makes of each. With `spinMs`, inputs are for spin.wasm
 * instead: about that many milliseconds of work each, every input distinct
 * (identical inputs would be one job, run once).
 */
export async function writeInputs (network: ProcessNetwork, count: number, options: { spinMs?: number, name?: string } = {}): Promise<{ dir: string, expected: Map<string, string> }> {
  const dir = join(network.home, options.name ?? 'in')
  await mkdir(dir, { recursive: true })
  const expected = new Map<string, string>()
  for (let i = 0; i < count; i++) {
    const file = `job-${String(i).padStart(4, '0')}.txt`
    await writeFile(join(dir, file), options.spinMs != null ? String(options.spinMs + i) : `input number ${i}`)
    expected.set(file, options.spinMs != null ? 'done\n' : `INPUT NUMBER ${i}`)
  }
  return { dir, expected }
}

/** Every expected output is there, exactly as the module makes it, and nothing else. */
export async function checkOutputs (outDir: string, expected: Map<string, string>): Promise<void> {
  const written = (await readdir(outDir)).filter(name => !name.startsWith('.')).sort()
  assert.deepEqual(written, [...expected.keys()].sort(), 'missing or extra outputs')
  for (const [file, output] of expected) {
    assert.equal(await readFile(join(outDir, file), 'utf8'), output, `wrong output for ${file}`)
  }
}

/** Outputs that differ from what is expected. */
export async function wrongOutputs (outDir: string, expected: Map<string, string>): Promise<string[]> {
  const wrong: string[] = []
  for (const [file, output] of expected) {
    if (await readFile(join(outDir, file), 'utf8').catch(() => undefined) !== output) {
      wrong.push(file)
    }
  }
  return wrong
}

/** Starts `wasmesh run <module> --inputs <dir> --out <dir> --json` on the network. */
export function startBatch (network: ProcessNetwork, module: string, inputsDir: string, outDir: string, extra: string[] = []): NodeProcess {
  return network.spawn(['run', wasmPath(module), '--inputs', inputsDir, '--out', outDir, '--bootstrap', network.bootstrapAddr, '--json', ...extra])
}

/** Waits for a batch to end and parses its summary. */
export async function batchFinished (process: NodeProcess): Promise<{ code: number | null, summary: BatchSummary }> {
  const code = await process.exited
  const line = process.lines.at(-1) ?? ''
  assert.ok(line.startsWith('{'), `no JSON summary: stdout ${process.lines.join(' | ')}; stderr ${process.stderr.slice(-5).join(' | ')}`)
  return { code, summary: JSON.parse(line) as BatchSummary }
}
