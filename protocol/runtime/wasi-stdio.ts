/**
 * The job's standard streams: stdin reads the job input, stdout collects the
 * output up to the output limit, stderr keeps its last 4 KiB for the receipt
 * (so a crash message is seen).
 */
import { OutputLimitError } from '../errors.ts'

const STDERR_TAIL_BYTES = 4096

export class Stdio {
  readonly #stdin: Uint8Array
  readonly #outputBytes: number
  #stdinOffset = 0
  /** One growing buffer, not a list of chunks: small writes would fill the JS heap. */
  #stdout = new Uint8Array(0)
  #stdoutLength = 0
  #stderr = new Uint8Array(0)

  constructor (stdin: Uint8Array, outputBytes: number) {
    this.#stdin = stdin
    this.#outputBytes = outputBytes
  }

  /** Bytes of stdin not read yet. */
  get unread (): number {
    return this.#stdin.length - this.#stdinOffset
  }

  read (into: Uint8Array): number {
    const chunk = this.#stdin.subarray(this.#stdinOffset, this.#stdinOffset + into.length)
    into.set(chunk)
    this.#stdinOffset += chunk.length
    return chunk.length
  }

  /** Keeps exactly the output limit and throws OutputLimitError on the write that passes it. */
  writeStdout (data: Uint8Array): number {
    const kept = Math.min(data.length, this.#outputBytes - this.#stdoutLength)
    const needed = this.#stdoutLength + kept
    if (needed > this.#stdout.length) {
      const grown = new Uint8Array(Math.min(this.#outputBytes, Math.max(needed, this.#stdout.length * 2, 4096)))
      grown.set(this.#stdout.subarray(0, this.#stdoutLength))
      this.#stdout = grown
    }
    this.#stdout.set(data.subarray(0, kept), this.#stdoutLength)
    this.#stdoutLength = needed
    if (kept < data.length) {
      throw new OutputLimitError(`the module wrote more than ${this.#outputBytes} bytes to stdout, the job's output limit`)
    }
    return data.length
  }

  writeStderr (data: Uint8Array): number {
    const tail = data.subarray(Math.max(0, data.length - STDERR_TAIL_BYTES))
    const joined = new Uint8Array(this.#stderr.length + tail.length)
    joined.set(this.#stderr)
    joined.set(tail, this.#stderr.length)
    this.#stderr = joined.slice(-STDERR_TAIL_BYTES)
    return data.length
  }

  stdout (): Uint8Array<ArrayBuffer> {
    return this.#stdout.slice(0, this.#stdoutLength)
  }

  /** The last 4 KiB written to stderr. */
  stderr (): Uint8Array<ArrayBuffer> {
    return this.#stderr
  }
}
