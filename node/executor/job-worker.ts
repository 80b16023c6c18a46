/** The worker_threads entry of WorkerPoolExecutor: wires protocol/runtime/worker.ts to the parent port. */
import { parentPort } from 'node:worker_threads'
import { READY, jobHandler } from '../../protocol/runtime/worker.ts'

if (parentPort === null) {
  throw new Error('job-worker must be started as a worker thread')
}
const port = parentPort

port.on('message', jobHandler((reply, transfer) => { port.postMessage(reply, transfer) }))
// 'online' fires before this module's imports have loaded; this says the thread can take a job.
port.postMessage(READY)
