/**
 * What the SDK does not keep of a batch and the page shows: the module's
 * name, the Workload choice and the input lines, in localStorage by batch id.
 */
const PREFIX = 'wasmesh-batch:'

export interface BatchMeta {
  module: string
  /** The Workload select's value, restored on resume. */
  demo: string
  inputs: string[]
}

export function readMeta (id: string): BatchMeta | undefined {
  try {
    const meta = JSON.parse(localStorage.getItem(PREFIX + id) ?? 'null') as BatchMeta | null
    return meta != null && Array.isArray(meta.inputs) ? meta : undefined
  } catch {
    return undefined
  }
}

/** Stores the batch's meta; undefined forgets it. */
export function writeMeta (id: string, meta: BatchMeta | undefined): void {
  try {
    if (meta == null) {
      localStorage.removeItem(PREFIX + id)
    } else {
      localStorage.setItem(PREFIX + id, JSON.stringify(meta))
    }
  } catch {
    // storage full or blocked: the batch still runs and resumes, its rows just show no input
  }
}
