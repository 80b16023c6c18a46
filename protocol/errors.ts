import type { Receipt, SignedReceipt } from './wire/receipt-types.ts'
import type { TreeDirectory } from './runtime/executor.ts'
import type { CID } from 'multiformats/cid'

/**
 * One error class per failure mode. Each carries what callers need:
 * - `name`: stable; it travels in receipts and across worker and network
 *   boundaries, and tests and apps match on it (never on the message);
 * - `code`: a short stable identifier for programs and logs;
 * - `hint`: one sentence a user can act on;
 * - `retryable`: whether another worker could succeed where this one did not
 *   (a dead peer: yes; a module that traps: no, it would trap everywhere).
 */
export class WasmeshError extends Error {
  static readonly NAME: string = 'WasmeshError'
  readonly code: string = 'WASMESH'
  readonly hint: string = ''
  readonly retryable: boolean = false
  /** For a failure of the job itself: the receipt that reports it. */
  receipt?: Receipt
  /** For a failure of the job itself: the receipt's signed bytes, for `verifyReceipt` and `wasmesh verify`. */
  signed?: SignedReceipt
  /** For a failure of the job itself: what the module wrote before it failed. */
  output?: Uint8Array
  /** For a failure of the job itself: its writable mounts' final trees, as the receipt signs them (absent when it never ran). */
  mounts?: Array<{ path: string, cid: CID, tree: TreeDirectory }>

  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'WasmeshError'
  }
}

/** A wire message, job spec, advert or receipt did not decode or failed validation. */
export class MalformedMessageError extends WasmeshError {
  static override readonly NAME = 'MalformedMessageError'
  override name = MalformedMessageError.NAME
  override readonly code = 'MALFORMED_MESSAGE'
  override readonly hint = 'The peer sent bytes that are not a valid wasmesh message; check that both sides run compatible versions.'
}

/** A receipt's signature, signer or contents do not check out. */
export class InvalidReceiptError extends WasmeshError {
  static override readonly NAME = 'InvalidReceiptError'
  override name = InvalidReceiptError.NAME
  override readonly code = 'INVALID_RECEIPT'
  override readonly hint = 'Do not trust this result: the receipt was altered, is for another job, or was signed by another peer.'
}

/** The bytes are not a WebAssembly module, or it does not fit the job's ABI. */
export class InvalidModuleError extends WasmeshError {
  static override readonly NAME = 'InvalidModuleError'
  override name = InvalidModuleError.NAME
  override readonly code = 'INVALID_MODULE'
  override readonly hint = 'Pass a .wasm file built for the job\'s ABI (wasi: exports _start and memory).'
}

/** The module imports something its ABI does not provide; the message names the import. */
export class ForbiddenImportError extends WasmeshError {
  static override readonly NAME = 'ForbiddenImportError'
  override name = ForbiddenImportError.NAME
  override readonly code = 'FORBIDDEN_IMPORT'
  override readonly hint = 'Build the module without that import, or choose the ABI that provides it (docs/runtimes.md).'
}

/** The job ran past its wall-time limit and was stopped. */
export class TimeLimitError extends WasmeshError {
  static override readonly NAME = 'TimeLimitError'
  override name = TimeLimitError.NAME
  override readonly code = 'TIME_LIMIT'
  override readonly hint = 'Raise the time limit (--timeout), or look for an endless loop in the module.'
}

/** The module asked for more linear memory than the job allows. */
export class MemoryLimitError extends WasmeshError {
  static override readonly NAME = 'MemoryLimitError'
  override name = MemoryLimitError.NAME
  override readonly code = 'MEMORY_LIMIT'
  override readonly hint = 'Raise the memory limit (--memory), or make the module use less.'
}

/** The module wrote more output than the job allows. */
export class OutputLimitError extends WasmeshError {
  static override readonly NAME = 'OutputLimitError'
  override name = OutputLimitError.NAME
  override readonly code = 'OUTPUT_LIMIT'
  override readonly hint = 'Raise the output limit (--max-output), or write less.'
}

/** The mounts hold more bytes or entries than the job's filesystem allows, before the module even starts. */
export class FilesystemLimitError extends WasmeshError {
  static override readonly NAME = 'FilesystemLimitError'
  override name = FilesystemLimitError.NAME
  override readonly code = 'FILESYSTEM_LIMIT'
  override readonly hint = 'Mount less, or raise the job\'s filesystem limit.'
}

/** A mount's path or tree is malformed: a bad name, a non-absolute path, two mounts at one path… The message says which. */
export class InvalidMountError extends WasmeshError {
  static override readonly NAME = 'InvalidMountError'
  override name = InvalidMountError.NAME
  override readonly code = 'INVALID_MOUNT'
  override readonly hint = 'Mount each directory at a distinct absolute path (/, /data, /out…).'
}

/** A mount's CID names something that is not a UnixFS file or directory we can read (another codec, a sharded directory…). */
export class InvalidTreeError extends WasmeshError {
  static override readonly NAME = 'InvalidTreeError'
  override name = InvalidTreeError.NAME
  override readonly code = 'INVALID_TREE'
  override readonly hint = 'Mount a UnixFS directory or file with no sharded directory in it, as `wasmesh run --mount /data=<dir>` adds one.'
}

/** The module trapped (unreachable, out-of-bounds access, division by zero…). */
export class WasmTrapError extends WasmeshError {
  static override readonly NAME = 'WasmTrapError'
  override name = WasmTrapError.NAME
  override readonly code = 'WASM_TRAP'
  override readonly hint = 'The module crashed; its stderr (shown with the error) usually says why.'
}

/** The module ran to the end but exited with a non-zero status. */
export class NonZeroExitError extends WasmeshError {
  static override readonly NAME = 'NonZeroExitError'
  override name = NonZeroExitError.NAME
  override readonly code = 'NON_ZERO_EXIT'
  override readonly hint = 'The module reported a failure; its stderr (shown with the error) usually says why.'
}

/** A module or input could not be fetched by CID from the network. */
export class ContentFetchError extends WasmeshError {
  static override readonly NAME = 'ContentFetchError'
  override name = ContentFetchError.NAME
  override readonly code = 'CONTENT_FETCH'
  override readonly hint = 'Keep a peer that holds the content online, or pass the bytes rather than a CID.'
  override readonly retryable = true
}

/** A peer sent bytes for a CID that do not hash to it, or more bytes than allowed. */
export class ContentMismatchError extends WasmeshError {
  static override readonly NAME = 'ContentMismatchError'
  override name = ContentMismatchError.NAME
  override readonly code = 'CONTENT_MISMATCH'
  override readonly hint = 'A peer served wrong bytes; the content is fetched again from others.'
  override readonly retryable = true
}

/** The worker has no free slot; try another one or later. */
export class WorkerBusyError extends WasmeshError {
  static override readonly NAME = 'WorkerBusyError'
  override name = WorkerBusyError.NAME
  override readonly code = 'WORKER_BUSY'
  override readonly hint = 'The job is sent to another worker, or again once this one has room.'
  override readonly retryable = true
}

/** The worker went away before returning a receipt. */
export class WorkerLostError extends WasmeshError {
  static override readonly NAME = 'WorkerLostError'
  override name = WorkerLostError.NAME
  override readonly code = 'WORKER_LOST'
  override readonly hint = 'The job is sent to another worker.'
  override readonly retryable = true
}

/** A network wait passed its deadline: a worker that did not answer in time, a fetch that did not finish. */
export class DeadlineError extends WasmeshError {
  static override readonly NAME = 'DeadlineError'
  override name = DeadlineError.NAME
  override readonly code = 'DEADLINE'
  override readonly hint = 'The peer was too slow or vanished; the job is sent to another worker.'
  override readonly retryable = true
}

/** The caller cancelled the job (its AbortSignal fired). */
export class CancelledError extends WasmeshError {
  static override readonly NAME = 'CancelledError'
  override name = CancelledError.NAME
  override readonly code = 'CANCELLED'
  override readonly hint = 'The job was cancelled on request; run it again to get a result.'
}

/** No peer advertises capacity for the job (yet). */
export class NoWorkersError extends WasmeshError {
  static override readonly NAME = 'NoWorkersError'
  override name = NoWorkersError.NAME
  override readonly code = 'NO_WORKERS'
  override readonly hint = 'Start a worker with `wasmesh peer`, or open the page and switch on Contribute.'
  override readonly retryable = true
}

/** Fewer distinct workers than the job's redundancy could be found before its deadline. */
export class NotEnoughWorkersError extends WasmeshError {
  static override readonly NAME = 'NotEnoughWorkersError'
  override name = NotEnoughWorkersError.NAME
  override readonly code = 'NOT_ENOUGH_WORKERS'
  override readonly hint = 'Start more workers (each result of a redundant job must come from a different one), or lower --redundancy.'
  override readonly retryable = true
}

/** An input (or job spec) is larger than workers accept: no other worker would take it either. */
export class InputTooLargeError extends WasmeshError {
  static override readonly NAME = 'InputTooLargeError'
  override name = InputTooLargeError.NAME
  override readonly code = 'INPUT_TOO_LARGE'
  override readonly hint = 'Split the input, or store it first and pass its CID.'
}

/** No stored batch has the id that was asked for. */
export class BatchNotFoundError extends WasmeshError {
  static override readonly NAME = 'BatchNotFoundError'
  override name = BatchNotFoundError.NAME
  override readonly code = 'BATCH_NOT_FOUND'
  override readonly hint = 'List stored batches with peer.listBatches(), or start the batch again.'
}

/** Every attempt to run a job on the network failed; `attempts` says why each one did. */
export class JobFailedError extends WasmeshError {
  static override readonly NAME = 'JobFailedError'
  override name = JobFailedError.NAME
  override readonly code = 'JOB_FAILED'
  override readonly hint = 'Check that workers are online and able to run the job; each attempt\'s error is listed.'
  readonly attempts: readonly Error[]

  constructor (message: string, attempts: readonly Error[] = []) {
    super(message, { cause: attempts.at(-1) })
    this.attempts = attempts
  }
}

/** No bootstrap node was configured, or none could be reached. */
export class BootstrapError extends WasmeshError {
  static override readonly NAME = 'BootstrapError'
  override name = BootstrapError.NAME
  override readonly code = 'BOOTSTRAP'
  override readonly hint = 'Check the bootstrap address and that the node is running (locally: `npm start`).'
}

/** The peer could not listen on an address it was given: in use, or not an address of this machine. */
export class ListenError extends WasmeshError {
  static override readonly NAME = 'ListenError'
  override name = ListenError.NAME
  override readonly code = 'LISTEN'
  override readonly hint = 'Stop the process that holds the port, or choose another port (`--port 0` or `/tcp/0` picks a free one).'
}

/** The peer's data directory could not be opened: most often another wasmesh process holds it. */
export class DataDirError extends WasmeshError {
  static override readonly NAME = 'DataDirError'
  override name = DataDirError.NAME
  override readonly code = 'DATA_DIR'
  override readonly hint = 'Stop the other wasmesh process using that directory, or give this one its own with `--data DIR`; check that it is writable.'
}

/** An internal fault in the executor, not attributable to the module. */
export class ExecutorError extends WasmeshError {
  static override readonly NAME = 'ExecutorError'
  override name = ExecutorError.NAME
  override readonly code = 'EXECUTOR'
  override readonly hint = 'The worker\'s sandbox failed; the job is sent to another worker.'
  override readonly retryable = true
}

/** A function manifest is malformed, not signed by the owner its address names, or older than the one we hold. */
export class InvalidManifestError extends WasmeshError {
  static override readonly NAME = 'InvalidManifestError'
  override name = InvalidManifestError.NAME
  override readonly code = 'INVALID_MANIFEST'
  override readonly hint = 'Only the owner\'s key can publish under its address; deploy under your own peer id, with a newer version.'
}

/** No manifest for a function address is known here or to the peers we asked. */
export class FunctionNotFoundError extends WasmeshError {
  static override readonly NAME = 'FunctionNotFoundError'
  override name = FunctionNotFoundError.NAME
  override readonly code = 'FUNCTION_NOT_FOUND'
  override readonly hint = 'Check the address (<owner peer id>/<name>, as `wasmesh functions` lists them) and that a peer holding its manifest is online.'
  override readonly retryable = true
}

/** A WAGI function ran but its output is not a CGI response (no header block, or a malformed header or status). */
export class FunctionResponseError extends WasmeshError {
  static override readonly NAME = 'FunctionResponseError'
  override name = FunctionResponseError.NAME
  override readonly code = 'FUNCTION_RESPONSE'
  override readonly hint = 'A WAGI module must print headers (at least Content-Type), a blank line, then the body.'
}

/** A storage peer refused a pin: it would exceed the space it offers, or the owner's fair share of it. */
export class StorageFullError extends WasmeshError {
  static override readonly NAME = 'StorageFullError'
  override name = StorageFullError.NAME
  override readonly code = 'STORAGE_FULL'
  override readonly hint = 'Store less, or on peers that advertise more free space (wasmesh status shows it).'
  override readonly retryable = true
}

/** Fewer storage peers than the replicas asked for accepted the content; the message lists who refused and why. */
export class NotEnoughHoldersError extends WasmeshError {
  static override readonly NAME = 'NotEnoughHoldersError'
  override name = NotEnoughHoldersError.NAME
  override readonly code = 'NOT_ENOUGH_HOLDERS'
  override readonly hint = 'Ask for fewer replicas, or wait for more peers offering storage (wasmesh peer --storage 2GiB).'
  override readonly retryable = true
}

/** A pin order or renewal is not signed by the content's owner or a key it authorised, or has expired. */
export class InvalidPinOrderError extends WasmeshError {
  static override readonly NAME = 'InvalidPinOrderError'
  override name = InvalidPinOrderError.NAME
  override readonly code = 'INVALID_PIN_ORDER'
  override readonly hint = 'Renew from the peer that stored the content, or from a peer it named in `renewers`.'
}

/** Every failure mode, in one list: the name registry below is derived from it. */
export const ERROR_CLASSES = [
  MalformedMessageError,
  InvalidReceiptError,
  InvalidModuleError,
  ForbiddenImportError,
  TimeLimitError,
  MemoryLimitError,
  OutputLimitError,
  FilesystemLimitError,
  InvalidMountError,
  InvalidTreeError,
  WasmTrapError,
  NonZeroExitError,
  ContentFetchError,
  ContentMismatchError,
  WorkerBusyError,
  WorkerLostError,
  DeadlineError,
  CancelledError,
  NoWorkersError,
  NotEnoughWorkersError,
  InputTooLargeError,
  BatchNotFoundError,
  JobFailedError,
  BootstrapError,
  ListenError,
  DataDirError,
  ExecutorError,
  InvalidManifestError,
  FunctionNotFoundError,
  FunctionResponseError,
  StorageFullError,
  NotEnoughHoldersError,
  InvalidPinOrderError
] as const

const byName = new Map<string, new (message: string) => WasmeshError>(ERROR_CLASSES.map(ErrorClass => [ErrorClass.NAME, ErrorClass]))

/** An error as it crosses a worker or network boundary: the only wire shape of an error. */
export interface WireError { name: string, message: string }

/**
 * Rebuilds a typed error from its wire shape. Unknown names become a plain
 * WasmeshError that keeps the remote name, so nothing is lost.
 */
export function errorFromWire (failure: WireError): WasmeshError {
  const ErrorClass = byName.get(failure.name)
  if (ErrorClass != null) {
    return new ErrorClass(failure.message)
  }
  const error = new WasmeshError(failure.message)
  error.name = failure.name
  return error
}

/** The wire shape of any thrown value. */
export function errorToWire (error: unknown): WireError {
  if (error instanceof Error) {
    return { name: error.name, message: error.message }
  }
  return { name: 'Error', message: String(error) }
}
