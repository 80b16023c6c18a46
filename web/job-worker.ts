/** The Web Worker entry of WebWorkerExecutor: wires protocol/runtime/worker.ts to the worker scope. */
import { READY, jobHandler } from '../protocol/runtime/worker.ts'
import type { JobMessage } from '../protocol/runtime/worker.ts'

// Typed by hand: web/ compiles with the DOM lib, where `self` is a Window.
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<JobMessage>) => void) | null
  postMessage: (message: unknown, transfer?: Transferable[]) => void
}

const handle = jobHandler((reply, transfer) => { scope.postMessage(reply, transfer) })
scope.onmessage = event => { handle(event.data) }
scope.postMessage(READY)
