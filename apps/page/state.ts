/**
 * What the page publishes on `window.wasmesh` for the e2e tests and the
 * browser benchmark: the public Peer and the page's own state, nothing of
 * the SDK's insides.
 */
import type { ActivitySeries } from './activity.ts'
import type { MeshView } from './mesh-view.ts'
import type { ServedHistory } from './served-history.ts'
import type { Peer } from '../../web/index.ts'
import type { StorageView } from './storage-card.ts'

export interface PageState {
  /** The peer, once it joined the network. */
  peer?: Peer
  timings: Timings
  /** `performance.now()` of each advert this tab published, oldest first (the latest ADVERTS_KEPT). */
  adverts: number[]
  /** Why the page could not join. */
  error?: string
  /** The last job run from the Run card. */
  lastResult?: LastResult
  /** The last app run from the Apps card, updated as its jobs arrive. */
  app?: AppRunState
  /** The batch shown in the Run card, updated as its results arrive. */
  batch?: BatchState
  /** The network view: `shown` is the peers as last drawn. */
  mesh?: Pick<MeshView, 'shown'>
  /** The jobs this tab served, newest first. */
  served?: Pick<ServedHistory, 'rows'>
  /** What the activity charts plot, one sample a second. */
  activity?: ActivitySeries
  /** What the Storage card last showed. */
  storage?: StorageView
}

/** When the page reached each step of joining, in ms since navigation start. */
export interface Timings {
  sdkLoaded?: number
  connected?: number
  reachable?: number
  contributing?: number
}

/** A contributing tab publishes an advert every few seconds for as long as it stays open: keep only the latest. */
const ADVERTS_KEPT = 100

/** Notes that this tab just published an advert. */
export function recordAdvert (state: PageState): void {
  state.adverts.push(performance.now())
  if (state.adverts.length > ADVERTS_KEPT) {
    state.adverts.shift()
  }
}

export interface LastResult {
  worker: string
  durationMs: number
  output: string
  verified: boolean
}

export type AppName = 'mandelbrot' | 'hashsearch' | 'montecarlo'

export interface AppRunState {
  app: AppName
  state: 'running' | 'ok' | 'error'
  done: number
  total: number
  /** Jobs per worker peer id. */
  workers: Record<string, number>
  summary?: string
  /** The answer in a canonical form, to compare with `wasmesh app … --json`: the image's SHA-256, the matching nonces, or inside/samples. */
  answer?: string
  error?: string
}

export interface BatchState {
  id: string
  module: string
  state: 'running' | 'ok' | 'error'
  total: number
  done: number
  failed: number
  /** Jobs that had finished before the reload this run resumed from; undefined for a fresh batch. */
  resumedFrom?: number
  rows: BatchRow[]
  /** Why the batch could not start or stopped. */
  error?: string
}

export interface BatchRow {
  index: number
  /** The input line; unknown for a batch this page did not start. */
  input?: string
  state: 'pending' | 'ok' | 'error'
  output?: string
  worker?: string
  job?: string
  verified?: boolean
  /** Read back from the result store: finished before a reload, not run again. */
  resumed?: boolean
  error?: string
}
