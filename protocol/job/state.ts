/**
 * The job state machine, as pure data and functions (Bacalhau's model: the
 * desired state against the observed one). A job holds what is wanted
 * (agreeing results from distinct workers) and its executions, one per
 * worker it was sent to; `transition` is the only way either changes, and
 * `plan` compares wanted with observed and says what to do next. Our own
 * run of a job (an audit, see verdict.ts) outweighs any vote. The
 * requester (requester.ts) is a loop that carries out the plan and feeds
 * what happens back in as events.
 *
 *   job:        queued → scheduling ⇄ running → verifying → accepted | failed | cancelled
 *   execution:  new → sent → running → receipted → verified | rejected
 *                 (and, before a receipt: busy | lost | timed-out | failed | cancelled)
 */
import type { WireError } from '../errors.ts'

export type JobPhase = 'queued' | 'scheduling' | 'running' | 'verifying' | 'accepted' | 'failed' | 'cancelled'

export type ExecutionPhase = 'new' | 'sent' | 'running' | 'receipted' | 'verified' | 'rejected' | 'busy' | 'lost' | 'timed-out' | 'failed' | 'cancelled'

/** Why an execution was launched: one of the replicas asked for, a check of a single result, or to decide a disagreement. */
export type ExecutionPurpose = 'replica' | 'check' | 'decider'

export interface Execution {
  id: number
  worker: string
  purpose: ExecutionPurpose
  phase: ExecutionPhase
  /** For a verified execution: what it reported (output hash, exit code, failure), as a comparable key. */
  outcome?: string
  error?: WireError
}

export interface Wanted {
  /** Agreeing verified results, from distinct workers, needed to accept an outcome. */
  quorum: number
  /** Executions launched at once at the start (the job's redundancy). */
  replicas: number
}

export interface JobState {
  job: string
  phase: JobPhase
  wanted: Wanted
  executions: readonly Execution[]
  /** The outcome accepted, once the job is accepted. */
  accepted?: string
  /** What our own run of the job reported, when the requester audited it to settle a dispute. */
  audit?: string
  /** Why the job failed or was cancelled. */
  failure?: WireError
}

export type JobInput =
  | { type: 'schedule' }
  | { type: 'place', worker: string, purpose: ExecutionPurpose }
  | { type: 'execution', id: number, phase: ExecutionPhase, outcome?: string, error?: WireError }
  | { type: 'want', quorum: number }
  | { type: 'audited', outcome: string }
  | { type: 'verify' }
  | { type: 'accept', outcome: string }
  | { type: 'fail', error: WireError }
  | { type: 'cancel', error: WireError }

const JOB_TRANSITIONS: Record<JobPhase, readonly JobPhase[]> = {
  queued: ['scheduling', 'accepted', 'cancelled'],
  scheduling: ['running', 'verifying', 'failed', 'cancelled'],
  running: ['scheduling', 'verifying', 'failed', 'cancelled'],
  verifying: ['running', 'scheduling', 'accepted', 'failed', 'cancelled'],
  accepted: [],
  failed: [],
  cancelled: []
}

const EXECUTION_TRANSITIONS: Record<ExecutionPhase, readonly ExecutionPhase[]> = {
  new: ['sent', 'lost', 'busy', 'cancelled'],
  sent: ['running', 'receipted', 'busy', 'lost', 'timed-out', 'failed', 'cancelled'],
  running: ['receipted', 'lost', 'timed-out', 'failed', 'cancelled'],
  receipted: ['verified', 'rejected'],
  verified: [],
  rejected: [],
  busy: [],
  lost: [],
  'timed-out': [],
  failed: [],
  cancelled: []
}

/** Executions still expected to report something. */
export const IN_FLIGHT: ReadonlySet<ExecutionPhase> = new Set(['new', 'sent', 'running', 'receipted'])

/** A job's terminal phases: one of them is reached exactly once. */
export const TERMINAL: ReadonlySet<JobPhase> = new Set(['accepted', 'failed', 'cancelled'])

export class IllegalTransitionError extends Error {
  override name = 'IllegalTransitionError'
}

export function createJobState (job: string, wanted: Wanted): JobState {
  return { job, phase: 'queued', wanted, executions: [] }
}

/**
 * The one way a job's state changes. Returns a new state (the old one is
 * untouched); throws IllegalTransitionError for an event its phase does not
 * allow, so a bug shows as an error rather than as a second terminal event.
 */
export function transition (state: JobState, input: JobInput): JobState {
  switch (input.type) {
    case 'schedule':
      return moveTo(state, 'scheduling')
    case 'place': {
      if (TERMINAL.has(state.phase)) {
        throw new IllegalTransitionError(`job ${state.job} is ${state.phase}: no execution can be placed`)
      }
      if (state.executions.some(e => e.worker === input.worker && e.phase !== 'busy')) {
        throw new IllegalTransitionError(`job ${state.job} already ran on ${input.worker}: every execution needs a distinct worker`)
      }
      const execution: Execution = { id: state.executions.length, worker: input.worker, purpose: input.purpose, phase: 'new' }
      return { ...moveTo(state, 'running'), executions: [...state.executions, execution] }
    }
    case 'execution': {
      const current = state.executions[input.id]
      if (current == null) {
        throw new IllegalTransitionError(`job ${state.job} has no execution ${input.id}`)
      }
      if (!EXECUTION_TRANSITIONS[current.phase].includes(input.phase)) {
        throw new IllegalTransitionError(`execution ${input.id} of job ${state.job} cannot go from ${current.phase} to ${input.phase}`)
      }
      const updated: Execution = { ...current, phase: input.phase, ...(input.outcome != null ? { outcome: input.outcome } : {}), ...(input.error != null ? { error: input.error } : {}) }
      const executions = state.executions.map(e => e.id === input.id ? updated : e)
      const next = { ...state, executions }
      // the job has nothing in flight: it goes back to looking for workers (plan decides whether it may)
      if (state.phase === 'running' && !executions.some(e => IN_FLIGHT.has(e.phase))) {
        return moveTo(next, 'scheduling')
      }
      return next
    }
    case 'want':
      if (!Number.isSafeInteger(input.quorum) || input.quorum < 1) {
        throw new IllegalTransitionError(`job ${state.job}: a quorum of ${input.quorum} means nothing`)
      }
      return { ...state, wanted: { ...state.wanted, quorum: input.quorum } }
    case 'audited':
      return { ...state, audit: input.outcome }
    case 'verify':
      return moveTo(state, 'verifying')
    case 'accept':
      return { ...moveTo(state, 'accepted'), accepted: input.outcome }
    case 'fail':
      return { ...moveTo(state, 'failed'), failure: input.error }
    case 'cancel':
      return { ...moveTo(state, 'cancelled'), failure: input.error }
  }
}

function moveTo (state: JobState, phase: JobPhase): JobState {
  if (state.phase === phase) {
    return state
  }
  if (!JOB_TRANSITIONS[state.phase].includes(phase)) {
    throw new IllegalTransitionError(`job ${state.job} cannot go from ${state.phase} to ${phase}`)
  }
  return { ...state, phase }
}

/** What the requester should do next. */
export type Plan =
  | { action: 'accept', outcome: string, agreeing: readonly Execution[], dissenting: readonly Execution[] }
  | { action: 'launch', count: number, purpose: ExecutionPurpose }
  | { action: 'wait' }
  | { action: 'give-up', reason: string, unchecked?: readonly Execution[] }

export interface PlanLimits {
  /** Executions a job may use in all before it is given up. */
  maxExecutions: number
  /** In-flight executions the requester has stopped counting on (silent, or far slower than usual): others are launched beside them. */
  overdue?: ReadonlySet<number>
}

/** Verified executions grouped by what they reported, largest group first. */
export function outcomeGroups (state: JobState): Execution[][] {
  const groups = new Map<string, Execution[]>()
  for (const execution of state.executions) {
    if (execution.phase === 'verified' && execution.outcome != null) {
      groups.set(execution.outcome, [...(groups.get(execution.outcome) ?? []), execution])
    }
  }
  return [...groups.values()].sort((a, b) => b.length - a.length)
}

/**
 * Compares what is wanted with what was observed. Accept once an outcome has
 * `quorum` agreeing verified executions (distinct workers, by construction);
 * else launch enough executions that, if they agree, the quorum is reached;
 * else wait for those in flight; give up when the budget is spent.
 */
export function plan (state: JobState, limits: PlanLimits): Plan {
  const groups = outcomeGroups(state)
  // our own run outweighs any vote: the group it agrees with wins
  const audited = state.audit != null ? groups.find(group => group[0]?.outcome === state.audit) : undefined
  if (audited != null) {
    return { action: 'accept', outcome: state.audit as string, agreeing: audited, dissenting: groups.filter(g => g !== audited).flat() }
  }
  const best = groups[0] ?? []
  const { quorum } = state.wanted
  if (best.length >= quorum) {
    return { action: 'accept', outcome: best[0]?.outcome as string, agreeing: best, dissenting: groups.slice(1).flat() }
  }
  const inFlight = state.executions.filter(e => IN_FLIGHT.has(e.phase) && limits.overdue?.has(e.id) !== true).length
  const wanted = state.executions.length === 0 ? state.wanted.replicas : quorum - best.length
  if (inFlight >= wanted) {
    return { action: 'wait' }
  }
  const spent = state.executions.filter(e => e.phase !== 'busy').length
  if (spent >= limits.maxExecutions) {
    if (state.executions.some(e => IN_FLIGHT.has(e.phase))) {
      return { action: 'wait' }
    }
    // a single result whose check could not be had: the requester decides whether it stands
    const unchecked = groups.length === 1 && best.length >= state.wanted.replicas ? { unchecked: best } : {}
    return { action: 'give-up', reason: groups.length > 1 ? `${groups.flat().length} workers disagreed on the output and no ${quorum} of them agreed` : `it used all ${limits.maxExecutions} executions it may`, ...unchecked }
  }
  // a check may be launched while the result it checks is still computed (job-run.ts, checkEarly)
  const covered = groups.flat().length + inFlight
  const purpose: ExecutionPurpose = groups.length > 1 ? 'decider' : covered >= state.wanted.replicas ? 'check' : 'replica'
  return { action: 'launch', count: Math.min(wanted - inFlight, limits.maxExecutions - spent), purpose }
}
