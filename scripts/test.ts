/**
 * `npm test`: lint, typecheck and build in turn; then the Node tests (unit,
 * cross-process, installed package) and the browser tests side by side;
 * then, one at a time, the few whose bounds on memory and time a machine
 * busy with the other suite would skew (NODE_ALONE, BROWSER_ALONE).
 * The suites spend most of their time waiting on other processes (peers
 * starting, jobs, timeouts), so on two cores running them together takes
 * about the longer of the two instead of their sum (serially they took
 * ~1,490 s quiet and 1,794 s in CI, against a 30-minute limit). Each
 * suite's lines are printed as they come, prefixed with its name (so a hang
 * shows where), and kept whole in a log under test-results/logs/; the exit
 * code fails if any suite failed.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir, readdir } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { join } from 'node:path'

const logDir = join('test-results', 'logs')

interface Step { name: string, command: string, args: string[] }

const npm = (script: string): Step => ({ name: script, command: 'npm', args: ['run', '--silent', script] })

const firstSteps: Step[] = [npm('lint'), npm('typecheck'), npm('build:wasm'), npm('build:web')]

/**
 * Run alone, after the rest, one suite at a time: their assertions bound
 * memory and time (a worker's memory after big outputs, a job placed within
 * a worker wait of 10 s, a tab's job placed within 30 s while the tab also
 * loads @wasmer/sdk), which the other suite beside them would skew.
 */
const NODE_ALONE = ['test/hostile.integration.test.ts']
const BROWSER_ALONE = ['test/e2e/browser-peer.spec.ts']
const nodeTests = (files: string[]): Step['args'] => ['--test', '--test-concurrency=1', '--test-timeout=300000', '--test-reporter=spec', ...files]
const filesIn = async (dir: string, suffix: string): Promise<string[]> => (await readdir(dir)).filter(file => file.endsWith(suffix)).map(file => `${dir}/${file}`).sort()
const allNodeTests = [...await filesIn('test', '.test.ts'), ...await filesIn('test/package', '.test.ts')]
const allBrowserSpecs = await filesIn('test/e2e', '.spec.ts')

const phases: Step[][] = [
  [
    { name: 'node', command: process.execPath, args: nodeTests(allNodeTests.filter(file => !NODE_ALONE.includes(file))) },
    { name: 'browser', command: 'npx', args: ['playwright', 'test', ...allBrowserSpecs.filter(file => !BROWSER_ALONE.includes(file))] }
  ],
  [{ name: 'node-alone', command: process.execPath, args: nodeTests(NODE_ALONE) }],
  [{ name: 'browser-alone', command: 'npx', args: ['playwright', 'test', ...BROWSER_ALONE] }]
]

/** Children still running: a stop of this runner (Ctrl-C, a CI timeout) is passed on to them, so no test network outlives it. */
const running = new Set<ChildProcess>()
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const child of running) {
      child.kill(signal)
    }
    process.exit(130)
  })
}

/** Runs a step with its output on this terminal; resolves with its exit code. */
function runInline (step: Step): Promise<number> {
  return new Promise(resolve => {
    const child = spawn(step.command, step.args, { stdio: 'inherit' })
    running.add(child)
    child.on('exit', (code, signal) => {
      running.delete(child)
      resolve(code ?? (signal != null ? 1 : 0))
    })
  })
}

/** Runs a suite, its lines prefixed on this terminal and kept in a log file; resolves with its exit code and the time it took. */
function runLogged (step: Step): Promise<{ code: number, seconds: number, log: string }> {
  const log = join(logDir, `${step.name}.log`)
  const started = Date.now()
  return new Promise(resolve => {
    const out = createWriteStream(log)
    const child = spawn(step.command, step.args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } })
    running.add(child)
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', line => {
        out.write(`${line}\n`)
        console.log(`[${step.name}] ${line}`)
      })
    }
    child.on('close', (code, signal) => {
      running.delete(child)
      out.end(() => { resolve({ code: code ?? (signal != null ? 1 : 0), seconds: Math.round((Date.now() - started) / 1000), log }) })
    })
  })
}

for (const step of firstSteps) {
  const code = await runInline(step)
  if (code !== 0) {
    console.error(`npm test: ${step.name} failed (exit ${code})`)
    process.exit(code)
  }
}

await mkdir(logDir, { recursive: true })
const outcomes: Array<{ name: string, code: number, seconds: number, log: string }> = []
for (const phase of phases) {
  console.log(`npm test: running ${phase.map(suite => `the ${suite.name} suite`).join(' and ')}${phase.length > 1 ? ' side by side' : ''} (logs in ${logDir}/)`)
  outcomes.push(...await Promise.all(phase.map(async suite => ({ name: suite.name, ...await runLogged(suite) }))))
}
for (const outcome of outcomes) {
  console.log(`npm test: ${outcome.name} suite ${outcome.code === 0 ? 'passed' : `FAILED (exit ${outcome.code}; whole output in ${outcome.log})`} in ${outcome.seconds} s`)
}
process.exit(outcomes.some(outcome => outcome.code !== 0) ? 1 : 0)
