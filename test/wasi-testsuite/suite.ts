/**
 * The official WASI preview1 conformance suite (WebAssembly/wasi-testsuite,
 * prebuilt), read as data from `../shared/wasi-testsuite` beside the
 * repository, and what we expect of each program
 * (test/wasi-testsuite.expected.json). Node only: the browser spec reads the
 * suite here and hands the page plain jobs.
 */
import { existsSync } from 'node:fs'
import { lstat, readFile, readdir, readlink } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TreeDirectory, TreeEntry } from '../../protocol/runtime/executor.ts'
import type { SuiteJob, SuiteOutcome } from './execute.ts'

/** `../shared/wasi-testsuite` from the repository root. */
export const SUITE_DIR = fileURLToPath(new URL('../../../shared/wasi-testsuite/', import.meta.url))
const EXPECTED_FILE = fileURLToPath(new URL('../wasi-testsuite.expected.json', import.meta.url))
const LANGUAGES = ['assemblyscript', 'c', 'rust']

/** Why the suite cannot run here, or undefined when it can. */
export function suiteMissing (): string | undefined {
  return existsSync(join(SUITE_DIR, 'rust')) ? undefined : `the WASI test suite is not at ${SUITE_DIR} (expected at ../shared/wasi-testsuite from the repository root)`
}

/** A program and what its spec (`<program>.json`, defaults when absent) expects of it. */
export interface SuiteCase {
  job: SuiteJob
  exitCode: number
  /** Checked only when the spec gives it, as the suite's own runner does. */
  stdout?: string
}

interface Spec {
  args?: string[]
  env?: Record<string, string>
  root?: string
  exit_code?: number
  stdout?: string
}

export async function loadSuite (): Promise<SuiteCase[]> {
  const cases: SuiteCase[] = []
  for (const language of LANGUAGES) {
    const dir = join(SUITE_DIR, language)
    for (const file of (await readdir(dir)).filter(name => name.endsWith('.wasm')).sort()) {
      const program = basename(file, '.wasm')
      const specFile = join(dir, `${program}.json`)
      const spec = existsSync(specFile) ? JSON.parse(await readFile(specFile, 'utf8')) as Spec : {}
      const job: SuiteJob = {
        name: `${language}/${program}`,
        module: new Uint8Array(await readFile(join(dir, file))),
        args: spec.args ?? [],
        env: spec.env ?? {}
      }
      if (spec.root !== undefined) {
        job.root = await readTree(join(dir, spec.root))
      }
      const suiteCase: SuiteCase = { job, exitCode: spec.exit_code ?? 0 }
      if (spec.stdout !== undefined) {
        suiteCase.stdout = spec.stdout
      }
      cases.push(suiteCase)
    }
  }
  return cases
}

/** A host directory as a mount tree; symlinks stay symlinks. */
export async function readTree (dir: string): Promise<TreeDirectory> {
  const entries: Record<string, TreeEntry> = {}
  for (const name of await readdir(dir)) {
    const path = join(dir, name)
    const stats = await lstat(path)
    entries[name] = stats.isDirectory()
      ? await readTree(path)
      : stats.isSymbolicLink()
        ? { type: 'symlink', target: await readlink(path) }
        : { type: 'file', content: new Uint8Array(await readFile(path)) }
  }
  return { type: 'directory', entries }
}

/** Whether an outcome meets its spec: the exit status, a normal exit, and stdout when the spec names it. */
export function passes (outcome: SuiteOutcome, suiteCase: SuiteCase): boolean {
  return outcome.error === null && outcome.exitCode === suiteCase.exitCode && (suiteCase.stdout === undefined || outcome.stdout === suiteCase.stdout)
}

/** Programs allowed to fail, each with the reason. */
export async function expectedFailures (): Promise<Record<string, string>> {
  const file = JSON.parse(await readFile(EXPECTED_FILE, 'utf8')) as { failing: Record<string, string> }
  return file.failing
}

/** A line that says why a program failed, for the test report. */
export function describeFailure (outcome: SuiteOutcome, suiteCase: SuiteCase): string {
  const stdout = suiteCase.stdout === undefined ? '' : `, stdout ${JSON.stringify(outcome.stdout)} (expected ${JSON.stringify(suiteCase.stdout)})`
  const stderr = outcome.stderr.trim().split('\n').slice(-3).join(' | ')
  return `exit ${outcome.exitCode} (expected ${suiteCase.exitCode})${outcome.error === null ? '' : `, ${outcome.error}`}${stdout}${stderr === '' ? '' : `; stderr: ${stderr}`}`
}
