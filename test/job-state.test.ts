import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createJobState, IllegalTransitionError, plan, transition, type JobInput, type JobState } from '../protocol/job/state.ts'
import { judge } from '../protocol/job/verdict.ts'

const LIMITS = { maxExecutions: 6 }

function run (state: JobState, ...inputs: JobInput[]): JobState {
  return inputs.reduce(transition, state)
}

/** A job with redundancy `k`, scheduled. */
function job (k = 1): JobState {
  return run(createJobState('bafyjob', { replicas: k, quorum: Math.floor(k / 2) + 1 }), { type: 'schedule' })
}

/** Places an execution on `worker` and carries it to a verified `outcome`. */
function verified (state: JobState, worker: string, outcome: string): JobState {
  const placed = transition(state, { type: 'place', worker, purpose: 'replica' })
  const id = placed.executions.length - 1
  return run(placed,
    { type: 'execution', id, phase: 'sent' },
    { type: 'execution', id, phase: 'receipted' },
    { type: 'execution', id, phase: 'verified', outcome })
}

describe('job state machine: transitions', () => {
  it('moves queued → scheduling → running → scheduling as executions come and go', () => {
    let state = createJobState('bafyjob', { replicas: 1, quorum: 1 })
    assert.equal(state.phase, 'queued')
    state = transition(state, { type: 'schedule' })
    assert.equal(state.phase, 'scheduling')
    state = transition(state, { type: 'place', worker: 'w1', purpose: 'replica' })
    assert.equal(state.phase, 'running')
    state = run(state, { type: 'execution', id: 0, phase: 'sent' }, { type: 'execution', id: 0, phase: 'lost', error: { name: 'WorkerLostError', message: 'gone' } })
    assert.equal(state.phase, 'scheduling', 'nothing in flight: back to looking for a worker')
    assert.equal(state.executions[0]?.phase, 'lost')
  })

  it('refuses a second execution on a worker the job already used, but lets a busy worker be asked again', () => {
    let state = verified(job(2), 'w1', 'A')
    assert.throws(() => transition(state, { type: 'place', worker: 'w1', purpose: 'replica' }), IllegalTransitionError)
    state = run(state, { type: 'place', worker: 'w2', purpose: 'replica' }, { type: 'execution', id: 1, phase: 'sent' }, { type: 'execution', id: 1, phase: 'busy' })
    assert.doesNotThrow(() => transition(state, { type: 'place', worker: 'w2', purpose: 'replica' }))
  })

  it('refuses illegal execution steps and anything after a terminal phase', () => {
    const state = transition(job(), { type: 'place', worker: 'w1', purpose: 'replica' })
    assert.throws(() => transition(state, { type: 'execution', id: 0, phase: 'verified', outcome: 'A' }), IllegalTransitionError, 'new → verified skips the receipt')
    assert.throws(() => transition(state, { type: 'execution', id: 7, phase: 'sent' }), IllegalTransitionError)
    const accepted = run(verified(job(), 'w1', 'A'), { type: 'verify' }, { type: 'accept', outcome: 'A' })
    assert.throws(() => transition(verified(job(), 'w1', 'A'), { type: 'accept', outcome: 'A' }), IllegalTransitionError, 'accepting needs the verifying step')
    assert.throws(() => transition(accepted, { type: 'fail', error: { name: 'X', message: 'late' } }), IllegalTransitionError, 'one terminal phase, once')
    assert.throws(() => transition(accepted, { type: 'place', worker: 'w2', purpose: 'check' }), IllegalTransitionError)
    assert.throws(() => transition(job(), { type: 'want', quorum: 0 }), IllegalTransitionError)
  })

  it('does not change the state it is given', () => {
    const before = job()
    const frozen = JSON.stringify(before)
    transition(before, { type: 'place', worker: 'w1', purpose: 'replica' })
    assert.equal(JSON.stringify(before), frozen)
  })
})

describe('job state machine: plan', () => {
  it('launches the redundancy at first, then accepts a quorum of distinct agreeing workers', () => {
    assert.deepEqual(plan(job(3), LIMITS), { action: 'launch', count: 3, purpose: 'replica' })
    let state = verified(job(3), 'w1', 'A')
    state = verified(state, 'w2', 'A')
    const next = plan(state, LIMITS)
    assert.equal(next.action, 'accept')
    assert.equal(next.action === 'accept' && next.outcome, 'A')
    assert.deepEqual(next.action === 'accept' && next.agreeing.map(e => e.worker), ['w1', 'w2'])
  })

  it('waits while enough executions are in flight to reach the quorum', () => {
    const state = transition(verified(job(2), 'w1', 'A'), { type: 'place', worker: 'w2', purpose: 'replica' })
    assert.deepEqual(plan(state, LIMITS), { action: 'wait' })
  })

  it('launches a check when a single result needs a second opinion, and a decider when the two disagree', () => {
    let state = transition(verified(job(1), 'w1', 'A'), { type: 'want', quorum: 2 })
    assert.deepEqual(plan(state, LIMITS), { action: 'launch', count: 1, purpose: 'check' })
    state = verified(state, 'w2', 'B')
    assert.deepEqual(plan(state, LIMITS), { action: 'launch', count: 1, purpose: 'decider' })
    state = verified(state, 'w3', 'B')
    const next = plan(state, LIMITS)
    assert.equal(next.action === 'accept' && next.outcome, 'B')
    assert.deepEqual(next.action === 'accept' && next.dissenting.map(e => e.worker), ['w1'])
  })

  it('lets our own run outweigh a vote: the audited group wins even against a majority', () => {
    let state = transition(verified(job(1), 'w1', 'A'), { type: 'want', quorum: 2 })
    state = verified(verified(state, 'w2', 'B'), 'w3', 'B')
    state = transition(state, { type: 'audited', outcome: 'A' })
    const next = plan(state, LIMITS)
    assert.equal(next.action === 'accept' && next.outcome, 'A')
    assert.deepEqual(next.action === 'accept' && next.dissenting.map(e => e.worker), ['w2', 'w3'])
  })

  it('gives up once the execution budget is spent, and says why', () => {
    let state = job(1)
    for (const worker of ['w1', 'w2', 'w3', 'w4', 'w5', 'w6']) {
      const id = state.executions.length
      state = run(state, { type: 'place', worker, purpose: 'replica' }, { type: 'execution', id, phase: 'sent' }, { type: 'execution', id, phase: 'lost' })
    }
    const next = plan(state, LIMITS)
    assert.equal(next.action, 'give-up')
    assert.match(next.action === 'give-up' ? next.reason : '', /all 6 executions/)
  })

  it('does not spend the budget on busy answers', () => {
    let state = job(1)
    for (let id = 0; id < 10; id++) {
      state = run(state, { type: 'place', worker: 'w1', purpose: 'replica' }, { type: 'execution', id, phase: 'sent' }, { type: 'execution', id, phase: 'busy' })
    }
    assert.equal(plan(state, LIMITS).action, 'launch')
  })
})

describe('verdicts', () => {
  const execution = (worker: string, outcome: string, error?: string): { id: number, worker: string, purpose: 'replica', phase: 'verified', outcome: string, error?: { name: string, message: string } } =>
    ({ id: 0, worker, purpose: 'replica', phase: 'verified', outcome, ...(error != null ? { error: { name: error, message: '' } } : {}) })

  it('convicts a dissent against three agreeing workers', () => {
    const verdict = judge({ agreeing: [execution('a', 'X'), execution('b', 'X'), execution('c', 'X')], dissenting: [execution('d', 'Y')] })
    assert.deepEqual(verdict.convict.map(e => e.worker), ['d'])
  })

  it('only strikes a dissent against two: two colluders would look the same', () => {
    const verdict = judge({ agreeing: [execution('a', 'X'), execution('b', 'X')], dissenting: [execution('d', 'Y')] })
    assert.deepEqual(verdict.convict, [])
    assert.deepEqual(verdict.strike.map(e => e.worker), ['d'])
  })

  it('with our own run: convicts whoever it contradicts, the majority included', () => {
    const confirmed = judge({ agreeing: [execution('a', 'X'), execution('b', 'X')], dissenting: [execution('d', 'Y')], audit: 'X' })
    assert.deepEqual(confirmed.convict.map(e => e.worker), ['d'])
    const colluders = judge({ agreeing: [execution('a', 'X'), execution('b', 'X')], dissenting: [execution('d', 'Y')], audit: 'Y' })
    assert.equal(colluders.outcome, 'Y')
    assert.deepEqual(colluders.accepted.map(e => e.worker), ['d'])
    assert.deepEqual(colluders.convict.map(e => e.worker), ['a', 'b'])
    const nobody = judge({ agreeing: [execution('a', 'X'), execution('b', 'X')], dissenting: [execution('d', 'Y')], audit: 'Z' })
    assert.deepEqual([nobody.convict, nobody.strike], [[], []], 'our run agrees with nobody: no proof against anyone')
  })

  it('marks a worker that only ran out of time as slow, not as a liar', () => {
    const verdict = judge({ agreeing: [execution('a', 'X'), execution('b', 'X'), execution('c', 'X')], dissenting: [execution('d', 'T', 'TimeLimitError')] })
    assert.deepEqual(verdict.convict, [])
    assert.deepEqual(verdict.slow.map(e => e.worker), ['d'])
  })
})
