/**
 * `npm test`: lint, typecheck and build in turn, then the Node suites (unit,
 * cross-process, installed package) and the browser suite side by side.
 * Both suites spend most of their time waiting on other processes (peers
 * starting, jobs, timeouts), so on two cores running them together takes
 * about the longer of the two instead of their sum. Each suite's lines are
 * printed as they come, prefixed with its name (so a hang shows where), and
 * kept whole in its own log under test-results/logs/; the exit code fails if
 * either suite failed.
 */
import { spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { join } from 'node:path'

const logDir = join('test-results', 'logs')

interface Step { name: string, command: string, args: string[] }

const npm = (script: string): Step => ({ name: script, command: 'npm', args: ['run', '--silent', script] })

const firstSteps: Step[] = [npm('lint'), npm('typecheck'), npm('build:wasm'), npm('build:web')]

const suites: Step[] = [
  { name: 'node', command: process.execPath, args: ['--test', '--test-concurrency=1', '--test-timeout=300000', '--test-reporter=spec', 'test/*.test.ts', 'test/package/*.test.ts'] },
  { name: 'browser', command: 'npx', args: ['playwright', 'test'] }
]

/** Runs a step with its output on this terminal; resolves with its exit code. */
function runInline (step: Step): Promise<number> {
  return new Promise(resolve => {
    const child = spawn(step.command, step.args, { stdio: 'inherit' })
    child.on('exit', (code, signal) => { resolve(code ?? (signal != null ? 1 : 0)) })
  })
}

/** Runs a suite, its lines prefixed on this terminal and kept in a log file; resolves with its exit code and the time it took. */
function runLogged (step: Step): Promise<{ code: number, seconds: number, log: string }> {
  const log = join(logDir, `${step.name}.log`)
  const started = Date.now()
  return new Promise(resolve => {
    const out = createWriteStream(log)
    const child = spawn(step.command, step.args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } })
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', line => {
        out.write(`${line}\n`)
        console.log(`[${step.name}] ${line}`)
      })
    }
    child.on('close', (code, signal) => {
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
console.log(`npm test: running the ${suites.map(suite => suite.name).join(' and ')} suites side by side (logs in ${logDir}/)`)
const outcomes = await Promise.all(suites.map(async suite => ({ name: suite.name, ...await runLogged(suite) })))
for (const outcome of outcomes) {
  console.log(`npm test: ${outcome.name} suite ${outcome.code === 0 ? 'passed' : `FAILED (exit ${outcome.code}; whole output in ${outcome.log})`} in ${outcome.seconds} s`)
}
process.exit(outcomes.some(outcome => outcome.code !== 0) ? 1 : 0)
