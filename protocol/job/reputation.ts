import { Key, type Datastore } from 'interface-datastore'
import { decodeCbor, encodeCbor } from '../wire/cbor.ts'
import { asRecord } from '../wire/validate.ts'
import { TypedEventEmitter } from 'main-event'
import { BASE_SPOT_CHECK_RATE, DISTINCT_ACCUSERS_TO_BAN, MAX_ACCUSERS, MIN_SPOT_CHECK_RATE, STRIKES_TO_BAN, TRUST_AFTER_CONFIRMATIONS } from '../constants.ts'

/** What this peer has seen of another peer as a worker. Local: every peer keeps its own. */
export interface PeerRecord {
  successes: number
  failures: number
  timeouts: number
  /** Results another worker ran too and agreed with: what earns trust. */
  confirmed: number
  /** Outputs that disagreed with the accepted one. */
  disagreements: number
  /** The workers whose agreeing results outvoted this one (bounded): see `strike`. */
  accusers?: string[]
  /** Smoothed round trip of its jobs as we measured it (never the worker's own figure). */
  latencyMs?: number
  /** Set when the peer was caught returning a wrong output. */
  banned?: { at: number, reason: string }
}

/** Verdicts a requester can reach about a worker's dissent. */
export type Verdict = 'convicted' | 'struck'

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

/** A storage holder that failed a check: missing or wrong block, or gone. */
export interface StorageEvidence {
  kind: 'storage'
  cid: string
  holder: string
  reason: string
  /** The holder's own signed storage receipt for the CID (wire/storage.ts), when it still claimed to hold it: its broken promise. */
  receipt?: Uint8Array
  at: number
}

const RECORD_PREFIX = '/wasmesh/reputation/'
const EVIDENCE_PREFIX = '/wasmesh/evidence/'
const STORAGE_EVIDENCE_PREFIX = '/wasmesh/storage-evidence/'

export interface ReputationComponents {
  datastore: Datastore
}

export interface ReputationEvents {
  /** A worker was banned: results accepted on its word alone must be revisited. */
  'banned': CustomEvent<string>
}

/**
 * Local reputation: a score for every worker from its record, persisted in
 * the peer's datastore (a file-backed one on Node, IndexedDB in browsers), so
 * it survives restarts and CLI runs. A worker caught with a wrong output is
 * banned, and the signed receipt that proves it is kept.
 *
 * Trust is earned, not advertised: a worker is checked on every result until
 * TRUST_AFTER_CONFIRMATIONS of them were confirmed by another worker, then
 * at a rate that falls with its record and never reaches zero.
 */
export class Reputation extends TypedEventEmitter<ReputationEvents> {
  private readonly datastore: Datastore
  private readonly records = new Map<string, PeerRecord>()
  private readonly dirty = new Set<string>()
  private flushing?: Promise<void>
  private timer?: ReturnType<typeof setTimeout>

  constructor (components: ReputationComponents) {
    super()
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
      record = { successes: 0, failures: 0, timeouts: 0, confirmed: 0, disagreements: 0 }
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

  /** Whether the worker ever delivered to us (without creating a record for a stranger). */
  hasDelivered (peerId: string): boolean {
    return (this.records.get(peerId)?.successes ?? 0) > 0
  }

  isBanned (peerId: string): boolean {
    return this.records.get(peerId)?.banned != null
  }

  /**
   * The share of this worker's results to check by running them again
   * elsewhere: all of them until it has TRUST_AFTER_CONFIRMATIONS confirmed
   * results, then BASE_SPOT_CHECK_RATE falling with its record, never below
   * MIN_SPOT_CHECK_RATE.
   */
  checkRate (peerId: string): number {
    const { confirmed } = this.get(peerId)
    if (confirmed < TRUST_AFTER_CONFIRMATIONS) {
      return 1
    }
    return Math.max(MIN_SPOT_CHECK_RATE, BASE_SPOT_CHECK_RATE / (1 + (confirmed - TRUST_AFTER_CONFIRMATIONS) / 20))
  }

  /** Whether to check this result of the worker's (drawn at its check rate). */
  needsCheck (peerId: string): boolean {
    return Math.random() < this.checkRate(peerId)
  }

  /** Another worker ran the same job and agreed. */
  confirm (peerId: string): void {
    this.get(peerId).confirmed++
    this.changed(peerId)
  }

  /** A job (or a chunk of `jobs`) answered, with the round trip as we measured it. */
  succeeded (peerId: string, latencyMs: number, jobs = 1): void {
    const record = this.get(peerId)
    record.successes += jobs
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

  /**
   * Bans a worker on a verdict that cannot be wrong unless most workers that
   * ran the job lied together (or our own run agrees with them), and keeps
   * its signed receipt as evidence.
   */
  async convict (evidence: Evidence, reason: string): Promise<void> {
    const record = this.get(evidence.worker)
    record.disagreements++
    this.changed(evidence.worker)
    await this.keep(evidence)
    this.ban(evidence.worker, evidence.at, reason)
  }

  /**
   * Weighs a verdict that could as well be wrong (outvoted 2 to 1: two
   * colluders would look the same): a strike, kept with its evidence. The
   * worker is banned once it has STRIKES_TO_BAN strikes from at least
   * DISTINCT_ACCUSERS_TO_BAN distinct accusing workers, which two colluders
   * alone can never give.
   */
  async strike (evidence: Evidence, accusers: readonly string[]): Promise<Verdict> {
    const record = this.get(evidence.worker)
    record.disagreements++
    record.accusers = [...new Set([...(record.accusers ?? []), ...accusers])].slice(-MAX_ACCUSERS)
    this.changed(evidence.worker)
    await this.keep(evidence)
    if (record.disagreements >= STRIKES_TO_BAN && record.accusers.length >= DISTINCT_ACCUSERS_TO_BAN) {
      this.ban(evidence.worker, evidence.at, `outvoted on ${record.disagreements} jobs by ${record.accusers.length} distinct workers`)
      return 'convicted'
    }
    return 'struck'
  }

  private ban (peerId: string, at: number, reason: string): void {
    const record = this.get(peerId)
    if (record.banned != null) {
      return
    }
    record.banned = { at, reason }
    this.changed(peerId)
    this.dispatchEvent(new CustomEvent('banned', { detail: peerId }))
  }

  private async keep (evidence: Evidence): Promise<void> {
    await this.datastore.put(new Key(`${EVIDENCE_PREFIX}${evidence.worker}/${evidence.job}`), encodeCbor(evidence))
  }

  /** The signed receipts that got a worker struck or banned. */
  async evidence (peerId: string, signal?: AbortSignal): Promise<Evidence[]> {
    const found: Evidence[] = []
    for await (const { value } of this.datastore.query({ prefix: `${EVIDENCE_PREFIX}${peerId}/` }, { signal })) {
      found.push(decodeCbor(value, 'evidence') as Evidence)
    }
    return found
  }

  /** Keeps the record of a failed storage check (the caller has already counted it with `failed`). */
  async keepStorageEvidence (evidence: StorageEvidence): Promise<void> {
    await this.datastore.put(new Key(`${STORAGE_EVIDENCE_PREFIX}${evidence.holder}/${evidence.cid}/${evidence.at}`), encodeCbor(evidence))
  }

  /** The failed storage checks of a holder. */
  async storageEvidence (peerId: string, signal?: AbortSignal): Promise<StorageEvidence[]> {
    const found: StorageEvidence[] = []
    for await (const { value } of this.datastore.query({ prefix: `${STORAGE_EVIDENCE_PREFIX}${peerId}/` }, { signal })) {
      found.push(decodeCbor(value, 'storage evidence') as StorageEvidence)
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
