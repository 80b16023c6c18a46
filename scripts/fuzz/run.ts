/**
 * The long fuzzing run (`npm run fuzz`, docs/scale.md):
 *
 *   npm run fuzz -- [--inputs 1000000] [--frames 100000] [--seed S] [--out FILE]
 *
 * 1. every wire decoder (scripts/fuzz/decoders.ts) gets its share of
 *    --inputs fast-check inputs; any error other than a typed WasmeshError,
 *    or a decode slower than 2 s, is a failure;
 * 2. a real bootstrap node and worker (separate processes) receive --frames
 *    random and mutated frames from the frame fuzzer (scripts/fuzz/frames.ts);
 *    both must stay up, their memory must come back within a minute, and a
 *    normal job must be served after.
 * Prints a JSON summary (and writes it to --out); exits non-zero on a failure.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildWasm, wasmPath } from '../build-wasm.ts'
import { explain, ProcessNetwork, repoRoot, rssMiB } from '../../test/helpers/processes.ts'
import { scriptArgs } from '../args.ts'
import { decoderTargets, fuzzDecoder, type DecoderReport } from './decoders.ts'

const values = scriptArgs(`npm run fuzz -- [--inputs 1000000] [--frames 100000] [--seed S] [--out FILE] (docs/scale.md)
  --inputs N    fast-check inputs, shared among the wire decoders (1000000)
  --frames N    random and mutated frames to a live worker and bootstrap node (100000)
  --seed S      the run's seed (from the clock)
  --out FILE    the JSON summary`, {
  inputs: { type: 'string', default: '1000000' },
  frames: { type: 'string', default: '100000' },
  seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
  out: { type: 'string' }
})
const seed = Number(values.seed)
const inputs = Number(values.inputs)
const frames = Number(values.frames)
const failures: string[] = []

const started = Date.now()
const targets = await decoderTargets()
const decoders: DecoderReport[] = []
for (const target of targets) {
  const report = await fuzzDecoder(target, Math.ceil(inputs / targets.length), seed)
  console.error(`${target.name}: ${report.inputs} inputs, ${report.accepted} accepted, ${report.rejected} rejected${report.failure != null ? `, FAILED: ${report.failure}` : ''}`)
  decoders.push(report)
  if (report.failure != null) {
    failures.push(`${target.name}: ${report.failure}`)
  }
}
const decoderSeconds = (Date.now() - started) / 1000

let live: Record<string, unknown> = {}
if (frames > 0) {
  await buildWasm()
  const network = await ProcessNetwork.start({ label: 'fuzz' })
  try {
    const worker = await network.startWorker('target', { slots: 2 })
    const address = (await worker.process.waitForLine(/^listening \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)).slice('listening '.length)
    const before = { worker: await rssMiB(worker.process.pid), bootstrap: await rssMiB(network.bootstrap.pid) }
    const framesStarted = Date.now()
    const fuzzer = network.spawnScript(join(repoRoot, 'scripts', 'fuzz', 'frames.ts'), ['--bootstrap', network.bootstrapAddr, '--worker', address, '--frames', String(frames), '--seed', String(seed)])
    let peak = { ...before }
    const sampler = setInterval(() => {
      void Promise.all([rssMiB(worker.process.pid), rssMiB(network.bootstrap.pid)]).then(([w, b]) => { peak = { worker: Math.max(peak.worker, w), bootstrap: Math.max(peak.bootstrap, b) } }, () => {})
    }, 1000)
    const done = await fuzzer.waitForLine(/^fuzz done/, 3 * 3600_000)
    clearInterval(sampler)
    const framesSeconds = (Date.now() - framesStarted) / 1000
    const alive = { worker: worker.process.exit == null, bootstrap: network.bootstrap.exit == null }
    const job = await network.run(['run', wasmPath('echo'), '--input', '-', '--json'], 'after the fuzz')
    let after = { worker: await rssMiB(worker.process.pid), bootstrap: await rssMiB(network.bootstrap.pid) }
    for (let i = 0; i < 60 && (after.worker > before.worker * 1.25 || after.bootstrap > before.bootstrap * 1.25); i++) {
      await new Promise(resolve => setTimeout(resolve, 1000))
      after = { worker: await rssMiB(worker.process.pid), bootstrap: await rssMiB(network.bootstrap.pid) }
    }
    live = { result: done, seconds: framesSeconds, alive, jobAfter: job.code === 0, rssMiB: { before, peak, after } }
    if (!alive.worker || !alive.bootstrap) {
      failures.push(`a process died: ${JSON.stringify(alive)}${network.casualties()}`)
    }
    if (job.code !== 0) {
      failures.push(`no normal job after the fuzz: ${explain(job)}`)
    }
    if (after.worker > before.worker * 1.25 || after.bootstrap > before.bootstrap * 1.25) {
      failures.push(`memory did not come back: ${JSON.stringify({ before, after })}`)
    }
  } finally {
    await network.stop()
  }
}

const summary = { seed, decoderInputs: decoders.reduce((n, d) => n + d.inputs, 0), decoderSeconds, decoders, live, failures }
console.log(JSON.stringify(summary, null, 2))
if (values.out != null) {
  await writeFile(values.out, JSON.stringify(summary, null, 2) + '\n')
}
process.exit(failures.length > 0 ? 1 : 0)
