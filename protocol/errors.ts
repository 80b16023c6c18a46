import type { Receipt } from './receipt.ts'

/**
 * One error class per failure mode. The `name` is stable: it travels in
 * receipts and across worker boundaries, and tests and apps match on it.
 *
 * `retryable` tells the scheduler whether another worker could succeed where
 * this one did not (a dead peer: yes; a module that traps: no, it would trap
 * everywhere).
 */
export class WasmeshError extends Error {
  readonly retryable: boolean = false
  /** For a failure of the job itself: the signed receipt that reports it. */
  receipt?: Receipt
  /** For a failure of the job itself: what the module wrote before it failed. */
  output?: Uint8Array

  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'WasmeshError'
  }
}

/** A wire message, job spec, advert or receipt did not decode or failed validation. */
export class MalformedMessageError extends WasmeshError {
  static readonly NAME = 'MalformedMessageError'
  override name = MalformedMessageError.NAME
}

/** A receipt's signature, signer or contents do not check out. */
export class InvalidReceiptError extends WasmeshError {
  static readonly NAME = 'InvalidReceiptError'
  override name = InvalidReceiptError.NAME
}

/** The bytes are not a WebAssembly module, or it does not fit the job's ABI. */
export class InvalidModuleError extends WasmeshError {
  static readonly NAME = 'InvalidModuleError'
  override name = InvalidModuleError.NAME
}

/** The module imports something its ABI does not provide; the message names the import. */
export class ForbiddenImportError extends WasmeshError {
  static readonly NAME = 'ForbiddenImportError'
  override name = ForbiddenImportError.NAME
}

/** The job ran past its wall-time limit and was stopped. */
export class TimeLimitError extends WasmeshError {
  static readonly NAME = 'TimeLimitError'
  override name = TimeLimitError.NAME
}

/** The module asked for more linear memory than the job allows. */
export class MemoryLimitError extends WasmeshError {
  static readonly NAME = 'MemoryLimitError'
  override name = MemoryLimitError.NAME
}

/** The module wrote more output than the job allows. */
export class OutputLimitError extends WasmeshError {
  static readonly NAME = 'OutputLimitError'
  override name = OutputLimitError.NAME
}

/** The mounts hold more bytes or entries than the job's filesystem allows, before the module even starts. */
export class FilesystemLimitError extends WasmeshError {
  static readonly NAME = 'FilesystemLimitError'
  override name = FilesystemLimitError.NAME
}

/** A mount's path or tree is malformed: a bad name, a non-absolute path, two mounts at one path… The message says which. */
export class InvalidMountError extends WasmeshError {
  static readonly NAME = 'InvalidMountError'
  override name = InvalidMountError.NAME
}

/** The module trapped (unreachable, out-of-bounds access, division by zero…). */
export class WasmTrapError extends WasmeshError {
  static readonly NAME = 'WasmTrapError'
  override name = WasmTrapError.NAME
}

/** The module ran to the end but exited with a non-zero status. */
export class NonZeroExitError extends WasmeshError {
  static readonly NAME = 'NonZeroExitError'
  override name = NonZeroExitError.NAME
}

/** A module or input could not be fetched by CID from the network. */
export class ContentFetchError extends WasmeshError {
  static readonly NAME = 'ContentFetchError'
  override name = ContentFetchError.NAME
  override readonly retryable = true
}

/** The worker has no free slot; try another one or later. */
export class WorkerBusyError extends WasmeshError {
  static readonly NAME = 'WorkerBusyError'
  override name = WorkerBusyError.NAME
  override readonly retryable = true
}

/** The worker went away or missed the deadline before returning a receipt. */
export class WorkerLostError extends WasmeshError {
  static readonly NAME = 'WorkerLostError'
  override name = WorkerLostError.NAME
  override readonly retryable = true
}

/** No peer advertises capacity for the job (yet). */
export class NoWorkersError extends WasmeshError {
  static readonly NAME = 'NoWorkersError'
  override name = NoWorkersError.NAME
  override readonly retryable = true
}

/** Every attempt to run a job on the network failed; `attempts` says why each one did. */
export class JobFailedError extends WasmeshError {
  static readonly NAME = 'JobFailedError'
  override name = JobFailedError.NAME
  readonly attempts: readonly Error[]

  constructor (message: string, attempts: readonly Error[]) {
    super(message, { cause: attempts.at(-1) })
    this.attempts = attempts
  }
}

/** No bootstrap node was configured, or none could be reached. */
export class BootstrapError extends WasmeshError {
  static readonly NAME = 'BootstrapError'
  override name = BootstrapError.NAME
}

/** An internal fault in the executor, not attributable to the module. */
export class ExecutorError extends WasmeshError {
  static readonly NAME = 'ExecutorError'
  override name = ExecutorError.NAME
  override readonly retryable = true
}

const byName: Record<string, new (message: string) => WasmeshError> = {
  MalformedMessageError,
  InvalidReceiptError,
  InvalidModuleError,
  ForbiddenImportError,
  TimeLimitError,
  MemoryLimitError,
  OutputLimitError,
  FilesystemLimitError,
  InvalidMountError,
  WasmTrapError,
  NonZeroExitError,
  ContentFetchError,
  WorkerBusyError,
  WorkerLostError,
  NoWorkersError,
  BootstrapError,
  ExecutorError
}

/**
 * Rebuilds a typed error from the `{ name, message }` pair that crossed a
 * worker or network boundary. Unknown names become a plain WasmeshError that
 * keeps the remote name, so nothing is lost.
 */
export function errorFromWire (failure: { name: string, message: string }): WasmeshError {
  const ErrorClass = byName[failure.name]
  if (ErrorClass != null) {
    return new ErrorClass(failure.message)
  }
  const error = new WasmeshError(failure.message)
  error.name = failure.name
  return error
}

/** The `{ name, message }` pair that represents an error on the wire. */
export function errorToWire (error: unknown): { name: string, message: string } {
  if (error instanceof Error) {
    return { name: error.name, message: error.message }
  }
  return { name: 'Error', message: String(error) }
}
