/**
 * The Run card's form, shared by a single job and a batch: which module (a
 * demo served with the page, or a dropped .wasm file), the mode, and example
 * inputs for each demo. Reading it checks it: a mistake throws UserError.
 */
import { $, setText } from './dom.ts'

/** A mistake in what the user entered: shown as it is, without an error name. */
export class UserError extends Error {}

export type Mode = 'single' | 'batch'

/** What the folded options give a job, as `peer.run` takes them. */
export interface JobOptionsInput {
  args: string[]
  env: Record<string, string>
  limits: { timeoutMs: number, memoryBytes: number, outputBytes: number }
}

const DEMOS: Record<string, { file: string, input: string, lines: string }> = {
  echo: { file: 'demo/echo.wasm', input: 'hello from wasmesh', lines: 'alpha\nbravo\ncharlie\ndelta\necho' },
  spin: { file: 'demo/spin.wasm', input: '2000', lines: '200\n400\n600\n800\n1000' }
}

const BATCH_ID = /^[A-Za-z0-9_.-]{1,128}$/
const MAX_BATCH_LINES = 1000

export class RunForm {
  /** Called on submit with the chosen mode; unset until the peer joined, when the buttons are still disabled. */
  onSubmit?: (mode: Mode) => void
  #file: { name: string, bytes: Uint8Array } | undefined

  constructor () {
    const demo = $<HTMLSelectElement>('demo')
    demo.addEventListener('change', () => {
      const spec = DEMOS[demo.value]
      $('drop').hidden = demo.value !== 'file'
      if (spec != null) {
        $<HTMLTextAreaElement>('input').value = spec.input
        // replace the example lines, not lines the user typed
        const inputs = $<HTMLTextAreaElement>('batch-inputs')
        if (inputs.value.trim() === '' || Object.values(DEMOS).some(d => d.lines === inputs.value)) {
          inputs.value = spec.lines
          countLines()
        }
      }
    })
    for (const mode of ['single', 'batch'] as const) {
      $(`mode-${mode}`).addEventListener('change', () => { setMode(mode) })
    }
    $('batch-inputs').addEventListener('input', countLines)
    const file = $<HTMLInputElement>('file')
    file.addEventListener('change', () => { void this.#take(file.files?.[0]) })
    const zone = $('dropzone')
    zone.addEventListener('dragover', event => { event.preventDefault(); zone.classList.add('over') })
    zone.addEventListener('dragleave', () => { zone.classList.remove('over') })
    zone.addEventListener('drop', event => {
      event.preventDefault()
      zone.classList.remove('over')
      demo.value = 'file'
      $('drop').hidden = false
      void this.#take(event.dataTransfer?.files[0])
    })
    $('run-form').addEventListener('submit', event => {
      event.preventDefault()
      this.onSubmit?.($<HTMLInputElement>('mode-batch').checked ? 'batch' : 'single')
    })
  }

  /** The Workload select's value: a demo's name, or 'file'. */
  get demo (): string {
    return $<HTMLSelectElement>('demo').value
  }

  /** The single job's stdin. */
  get input (): string {
    return $<HTMLTextAreaElement>('input').value
  }

  /** The module the Workload select names: a demo fetched from the page's origin, or the dropped file. */
  async module (): Promise<{ bytes: Uint8Array, name: string }> {
    let bytes: Uint8Array
    let name: string
    const demo = this.demo
    if (demo === 'file') {
      if (this.#file == null) {
        throw new UserError('Choose or drop a .wasm file first.')
      }
      ({ bytes, name } = this.#file)
    } else {
      const spec = DEMOS[demo] as { file: string }
      const response = await fetch(new URL(spec.file, location.href))
      if (!response.ok) {
        throw new UserError(`could not load the demo module ${spec.file} (HTTP ${response.status})`)
      }
      bytes = new Uint8Array(await response.arrayBuffer())
      name = spec.file.split('/').pop() ?? spec.file
    }
    if (!isWasm(bytes)) {
      throw new UserError(`${name} is not a WebAssembly module (it does not start with the \\0asm magic bytes).`)
    }
    return { bytes, name }
  }

  /** Arguments, environment and limits from the folded options; a mistake throws UserError. */
  jobOptions (): JobOptionsInput {
    const number = (id: string, what: string, min: number, max: number): number => {
      const value = Number($<HTMLInputElement>(id).value)
      if (!Number.isFinite(value) || value < min || value > max) {
        throw new UserError(`${what} must be between ${min} and ${max}.`)
      }
      return value
    }
    const limits = {
      timeoutMs: Math.round(number('limit-time', 'The time limit (s)', 1, 86_400) * 1000),
      memoryBytes: Math.round(number('limit-memory', 'The memory limit (MiB)', 1, 4096) * 2 ** 20),
      outputBytes: Math.round(number('limit-output', 'The output limit (MiB)', 0, 1024) * 2 ** 20)
    }
    return { args: splitArguments($<HTMLInputElement>('job-args').value), env: parseEnvironment($<HTMLTextAreaElement>('job-env').value), limits }
  }

  /** The batch's name and its inputs, one job per line. */
  batch (): { id: string, inputs: string[] } {
    const id = $<HTMLInputElement>('batch-name').value.trim()
    if (!BATCH_ID.test(id)) {
      throw new UserError('Name the batch with 1 to 128 letters, digits, \'-\', \'_\' or \'.\'.')
    }
    return { id, inputs: batchLines($<HTMLTextAreaElement>('batch-inputs').value) }
  }

  /** Shows the form as it was when a stored batch started; without `started`, only its name is known. */
  restoreBatch (id: string, started: { demo: string, inputs: string[] } | undefined): void {
    const demo = $<HTMLSelectElement>('demo')
    if (started != null && started.demo in DEMOS) {
      demo.value = started.demo
      demo.dispatchEvent(new Event('change'))
    }
    $<HTMLInputElement>('batch-name').value = id
    setMode('batch')
    if (started != null) {
      $<HTMLTextAreaElement>('batch-inputs').value = started.inputs.join('\n')
      countLines()
    }
  }

  async #take (file: File | undefined): Promise<void> {
    if (file == null) {
      return
    }
    this.#file = { name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) }
    $('file-name').textContent = `${file.name} (${file.size.toLocaleString()} bytes)`
  }
}

function setMode (mode: Mode): void {
  $<HTMLInputElement>(`mode-${mode}`).checked = true
  $('single-fields').hidden = mode !== 'single'
  $('batch-fields').hidden = mode !== 'batch'
  if (mode === 'batch') {
    const demo = $<HTMLSelectElement>('demo').value
    const inputs = $<HTMLTextAreaElement>('batch-inputs')
    if (inputs.value.trim() === '') {
      inputs.value = DEMOS[demo]?.lines ?? ''
      countLines()
    }
    const name = $<HTMLInputElement>('batch-name')
    if (name.value.trim() === '') {
      name.value = `${demo === 'file' ? 'wasm' : demo}-${Date.now().toString(36)}`
    }
  }
}

function countLines (): void {
  const lines = $<HTMLTextAreaElement>('batch-inputs').value.split('\n').filter(line => line.trim() !== '').length
  setText($('batch-count'), `${lines} job${lines === 1 ? '' : 's'}`)
}

/** One input per line; a trailing newline is not a job, an empty line in between is a mistake. */
function batchLines (text: string): string[] {
  const lines = text.split('\n').map(line => line.replace(/\r$/, ''))
  while (lines.length > 0 && (lines.at(-1) as string).trim() === '') {
    lines.pop()
  }
  if (lines.length === 0) {
    throw new UserError('Enter at least one input: each line is one job\'s stdin.')
  }
  const empty = lines.flatMap((line, i) => line.trim() === '' ? [i + 1] : [])
  if (empty.length > 0) {
    const which = empty.length > 5 ? `${empty.slice(0, 5).join(', ')}…` : empty.join(', ')
    throw new UserError(`Line${empty.length === 1 ? '' : 's'} ${which} ${empty.length === 1 ? 'is' : 'are'} empty: each line is one job's stdin. Remove empty lines.`)
  }
  if (lines.length > MAX_BATCH_LINES) {
    throw new UserError(`${lines.length} lines: a batch from the page takes at most ${MAX_BATCH_LINES}. For more, use \`wasmesh run <module> --inputs DIR\`.`)
  }
  return lines
}

/** Splits arguments on spaces; double or single quotes keep spaces inside one argument. */
function splitArguments (text: string): string[] {
  const args: string[] = []
  for (const match of text.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) {
    args.push(match[1] ?? match[2] ?? match[3] ?? '')
  }
  return args
}

/** One NAME=value per line; blank lines are skipped. */
function parseEnvironment (text: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') {
      continue
    }
    const equals = line.indexOf('=')
    if (equals < 1) {
      throw new UserError(`Environment line ${i + 1} needs the form NAME=value.`)
    }
    env[line.slice(0, equals).trim()] = line.slice(equals + 1)
  }
  return env
}

function isWasm (bytes: Uint8Array): boolean {
  return bytes.byteLength >= 8 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d
}
