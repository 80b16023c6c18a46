import { Key, type Datastore } from 'interface-datastore'
import { decodeCbor, encodeCbor } from '../wire/cbor.ts'
import { asRecord } from '../wire/validate.ts'
import { BASE_SPOT_CHECK_RATE, MIN_SPOT_CHECK_RATE } from '../constants.ts'

/** What this peer has seen of another peer as a worker. Local: every peer keeps its own. */
export interface PeerRecord {
  successes: number
  failures: number
  timeouts: number
  /** Outputs that disagreed with the accepted one. */
  disagreements: number
  /** Smoothed round trip of its jobs, minus execution time. */
  latencyMs?: number
  /** Set when the peer was caught returning a wrong output. */
  banned?: { at: number, reason: string }
}

/** A signed receipt that disagreed with the output a quorum accepted: proof the worker lied or broke. */
export interface Evidence {
  job: string
  worker: string
  /** sha2-256 multihash (base64) of the output the quorum accepted. */
  acceptedHash: string
  /** The worker's encoded signed receipt, verifiable by anyone. */
  receipt: Uint8Array
  at: number
}

const RECORD_PREFIX = '/wasmesh/reputation/'
const EVIDENCE_PREFIX = '/wasmesh/evidence/'

/**
 * Local reputation: a score for every worker from its record, persisted in
 * the peer's datastore (a file-backed one on Node, IndexedDB in browsers), so
 * it survives restarts. A worker caught with a wrong output is banned, and
 * the signed receipt that proves it is kept.
 */
export interface ReputationComponents {
  datastore: Datastore
}

export class Reputation {
  private readonly datastore: Datastore
  private readonly records = new Map<string, PeerRecord>()
  private readonly dirty = new Set<string>()
  private flushing?: Promise<void>
  private timer?: ReturnType<typeof setTimeout>

  constructor (components: ReputationComponents) {
    this.datastore = components.datastore
  }

  /** Loads the records kept from earlier runs. */
  async start (): Promise<void> {
    for await (const { key, value } of this.datastore.query({ prefix: RECORD_PREFIX })) {
      try {
        this.records.set(key.toString().slice(RECORD_PREFIX.length), asRecord(decodeCbor(value, 'reputation record'), 'reputation record') as unknown as PeerRecord)
      } catch {
        // a corrupt record is forgotten, not fatal
      }
    }
  }

  get (peerId: string): PeerRecord {
    let record = this.records.get(peerId)
    if (record == null) {
      record = { successes: 0, failures: 0, timeouts: 0, disagreements: 0 }
      this.records.set(peerId, record)
    }
    return record
  }

  /** From 0 (never use) to 1: the smoothed share of jobs it answered correctly. */
  score (peerId: string): number {
    const record = this.get(peerId)
    if (record.banned != null) {
      return 0
    }
    const bad = record.failures + record.timeouts + 4 * record.disagreements
    return (record.successes + 1) / (record.successes + bad + 2)
  }

  isBanned (peerId: string): boolean {
    return this.records.get(peerId)?.banned != null
  }

  /** How often to re-run one of this worker's jobs elsewhere to check it: often for strangers, rarely for proven workers. */
  spotCheckRate (peerId: string): number {
    const { successes } = this.get(peerId)
    return Math.max(MIN_SPOT_CHECK_RATE, BASE_SPOT_CHECK_RATE / (1 + successes / 20))
  }

  succeeded (peerId: string, latencyMs: number): void {
    const record = this.get(peerId)
    record.successes++
    record.latencyMs = record.latencyMs == null ? latencyMs : record.latencyMs * 0.8 + latencyMs * 0.2
    this.changed(peerId)
  }

  failed (peerId: string, kind: 'failure' | 'timeout'): void {
    const record = this.get(peerId)
    if (kind === 'timeout') {
      record.timeouts++
    } else {
      record.failures++
    }
    this.changed(peerId)
  }

  /** Bans a worker whose signed output disagreed with the accepted one, and keeps the receipt as evidence. */
  async convict (evidence: Evidence): Promise<void> {
    const record = this.get(evidence.worker)
    record.disagreements++
    record.banned ??= { at: evidence.at, reason: `returned an output for job ${evidence.job} that disagreed with the quorum` }
    this.changed(evidence.worker)
    await this.datastore.put(new Key(`${EVIDENCE_PREFIX}${evidence.worker}/${evidence.job}`), encodeCbor(evidence))
  }

  /** The signed receipts that got a worker banned. */
  async evidence (peerId: string, signal?: AbortSignal): Promise<Evidence[]> {
    const found: Evidence[] = []
    for await (const { value } of this.datastore.query({ prefix: `${EVIDENCE_PREFIX}${peerId}/` }, { signal })) {
      found.push(decodeCbor(value, 'evidence') as Evidence)
    }
    return found
  }

  /** Every worker we have a record of. */
  all (): Array<{ peerId: string, record: PeerRecord, score: number }> {
    return [...this.records.keys()].map(peerId => ({ peerId, record: this.get(peerId), score: this.score(peerId) }))
  }

  /** Writes changed records; called after changes, coalesced so a busy batch does not write per job. */
  async flush (): Promise<void> {
    while (this.flushing != null) {
      await this.flushing
    }
    const peers = [...this.dirty]
    this.dirty.clear()
    this.flushing = Promise.all(peers.map(async peerId => {
      await this.datastore.put(new Key(`${RECORD_PREFIX}${peerId}`), encodeCbor(this.get(peerId)))
    })).then(() => {}, () => {}).finally(() => { this.flushing = undefined })
    await this.flushing
  }

  /** Writes what is pending and stops the write-behind timer. */
  async stop (): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    await this.flush()
  }

  private changed (peerId: string): void {
    this.dirty.add(peerId)
    this.timer ??= setTimeout(() => {
      this.timer = undefined
      void this.flush()
    }, 1000)
  }
}

export function reputation (): (components: ReputationComponents) => Reputation {
  return components => new Reputation(components)
}
