import type { Metrics } from '@libp2p/interface'
import { decodeCbor } from './wire/cbor.ts'
import { receiptSucceeded, validateReceipt } from './wire/receipt.ts'
import type { StorageStats } from './storage/holder.ts'
import type { Contribution } from './worker/contributor.ts'
import type { ServedJob } from './worker/job-server.ts'

/** What the metrics read of a peer: its events (`work:end`, `job:*`) and its state. */
export interface MeteredPeer extends EventTarget {
  readonly contribution: Contribution | undefined
  peers: () => readonly unknown[]
  storageStats: () => StorageStats
}

/**
 * wasmesh's own counters and gauges, registered on libp2p's metrics beside
 * libp2p's (in Node, `createPeer({ metrics: true })` exports them all for
 * Prometheus). Jobs are counted from the peer's events, which are built only
 * while someone listens: a peer without metrics pays nothing for them.
 */
export function registerPeerMetrics (metrics: Metrics, peer: MeteredPeer): void {
  const served = metrics.registerCounterGroup('wasmesh_jobs_served_total', {
    label: 'outcome',
    help: 'Jobs this peer ran for requesters, by outcome: ok (signed, exit 0), failed (a signed failure: trap, limit, non-zero exit), unanswered (ended without a receipt: cancelled, content unreachable)'
  })
  const requested = metrics.registerCounterGroup('wasmesh_jobs_requested_total', {
    label: 'outcome',
    help: 'Jobs this peer asked the mesh to run, by outcome: done (a result accepted), failed, retried (one execution ended without a usable result and another was tried)'
  })
  peer.addEventListener('work:end', event => { served.increment({ [servedOutcome((event as CustomEvent<ServedJob>).detail)]: true }) })
  peer.addEventListener('job:done', () => { requested.increment({ done: true }) })
  peer.addEventListener('job:failed', () => { requested.increment({ failed: true }) })
  peer.addEventListener('job:retry', () => { requested.increment({ retried: true }) })
  metrics.registerMetricGroup('wasmesh_slots', {
    label: 'state',
    help: 'Job slots this peer contributes: total, and running a job now',
    calculate: () => ({ total: peer.contribution?.threads ?? 0, running: peer.contribution?.running ?? 0 })
  })
  metrics.registerMetric('wasmesh_capacity_workers', { help: 'Workers whose capacity adverts this peer holds', calculate: () => peer.peers().length })
  metrics.registerMetricGroup('wasmesh_storage_bytes', {
    label: 'kind',
    help: 'Storage this peer offers others, and how much of it is pinned',
    calculate: () => {
      const stats = peer.storageStats()
      return { offered: stats.offeredBytes, used: stats.usedBytes }
    }
  })
  metrics.registerMetric('wasmesh_storage_pins', { help: 'CIDs this peer holds for others', calculate: () => peer.storageStats().pins })
  metrics.registerCounterGroup('wasmesh_storage_checks_total', {
    label: 'kind',
    help: 'Storage checks: of fellow holders (sent), of them failed (failed), of us answered (answered)',
    calculate: () => {
      const stats = peer.storageStats()
      return { sent: stats.challengesSent, failed: stats.challengesFailed, answered: stats.challengesAnswered }
    }
  })
  metrics.registerCounter('wasmesh_storage_repairs_total', { help: 'Replicas this peer placed to repair a holder set', calculate: () => peer.storageStats().repairs })
}

function servedOutcome (job: ServedJob): 'ok' | 'failed' | 'unanswered' {
  if (job.signed == null) {
    return 'unanswered'
  }
  return receiptSucceeded(validateReceipt(decodeCbor(job.signed.payload, 'receipt'))) ? 'ok' : 'failed'
}
