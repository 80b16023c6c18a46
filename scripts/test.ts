/**
 * `npm test`: lint, typecheck and builds (the library too, when a source is
 * newer than it: the test networks run the built CLI), then the Node suite
 * (unit, cross-process, installed package) and the browser suite. Each
 * suite's lines are printed as they come, prefixed with its name, and kept
 * whole in a log under test-results/logs/; both suites run even if the
 * first fails, and the exit code fails if either did. A stop of the runner
 * (Ctrl-C, a CI timeout) is passed on to the suite running.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { staleBuiltCli } from './built-cli.ts'

const logDir = join('test-results', 'logs')

interface Step { name: string, command: string, args: string[] }

const npm = (script: string): Step => ({ name: script, command: 'npm', args: ['run', '--silent', script] })

const firstSteps: Step[] = [npm('lint'), npm('typecheck'), npm('build:wasm'), npm('build:web')]

const nodeTests = ['--test', '--test-concurrency=1', '--test-timeout=300000', '--test-reporter=spec', 'test/*.test.ts', 'test/package/*.test.ts']

/**
 * One after the other: run side by side on two cores, the suites took as
 * long as in turn (both are busy, not waiting), and timing bounds in each
 * broke under the other's load.
 */
const suites: Step[] = [
  { name: 'node', command: process.execPath, args: nodeTests },
  { name: 'browser', command: 'npx', args: ['playwright', 'test'] }
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

/**
 * Each failure of Playwright's list reporter up to its attachments: a CI log
 * that keeps only its last lines then still shows why every test failed,
 * not a dozen screenshot paths of the last one.
 */
function playwrightFailures (log: string): string {
  const failures = log.split(/^(?= {2}\d+\) )/m).slice(1)
  return failures.map(failure => {
    const lines = failure.split('\n')
    const end = lines.findIndex(line => /^\s+(attachment #|Error Context:)/.test(line))
    return lines.slice(0, end === -1 ? 20 : Math.min(end, 20)).filter(line => line.trim() !== '').join('\n')
  }).join('\n')
}

// the test networks run the built CLI (scripts/built-cli.ts): rebuilt when a source changed since
const stale = staleBuiltCli()
if (stale != null) {
  console.log(`npm test: ${stale}; building it`)
  firstSteps.push(npm('build:lib'))
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
for (const suite of suites) {
  console.log(`npm test: the ${suite.name} suite (its log: ${logDir}/${suite.name}.log)`)
  outcomes.push({ name: suite.name, ...await runLogged(suite) })
}
for (const outcome of outcomes.filter(outcome => outcome.code !== 0 && outcome.name === 'browser')) {
  console.log(`npm test: the browser suite's failures, in short (each in full above and in ${outcome.log}):\n${playwrightFailures(await readFile(outcome.log, 'utf8'))}`)
}
for (const outcome of outcomes) {
  console.log(`npm test: ${outcome.name} suite ${outcome.code === 0 ? 'passed' : `FAILED (exit ${outcome.code}; whole output in ${outcome.log})`} in ${outcome.seconds} s`)
}
process.exit(outcomes.some(outcome => outcome.code !== 0) ? 1 : 0)
