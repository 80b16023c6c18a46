import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { simulate } from '../scripts/sim/run.ts'

/**
 * A short run of the simulated mesh (scripts/sim/): the real capacity
 * service, requester, scheduler, job client and job server of 24 workers
 * and 2 requesters, in virtual time, with a liar among the workers and
 * workers leaving and joining while the jobs run. The long runs are
 * `npm run sim` (docs/scale.md).
 */
describe('simulated mesh', () => {
  it('24 workers (one a liar) with churn, 2 requesters, 300 jobs: every job done, none wrong, gossip and discovery measured', async (t: TestContext) => {
    const result = await simulate({ peers: 24, jobs: 300, churn: 0.2, liars: 1, requesters: 2, slots: 2, latencyMs: 20, loss: 0.01, runMeanMs: 500, jobTimes: 'execution', warmupS: 10, windowS: 10, seed: 7, stretchAgeS: 5, limitS: 600, trace: true })
    t.diagnostic(JSON.stringify({ completed: result.completed, lost: result.lost, wrong: result.wrong, utilisation: result.utilisation, busy: result.busyUtilisation, map: result.mapUtilisation, makespanMs: result.makespanMs, gossip: result.gossipBytesPerPeerPerS, discoveryMs: result.discoveryMs, churn: result.churn, wallMs: result.wallMs }))
    assert.equal(result.completed, 300)
    assert.equal(result.lost, 0)
    assert.equal(result.wrong, 0)
    assert.equal(result.liars, 1)
    assert.ok(result.churn.left > 0 && result.churn.joined > 0, 'no churn happened')
    assert.ok(result.utilisation > 0 && result.utilisation <= 1, `utilisation ${result.utilisation}`)
    // busy counts every execution, useful those that delivered, the map's own work one per job
    assert.ok(result.busyUtilisation >= result.utilisation && result.utilisation > result.mapUtilisation && result.mapUtilisation > 0, JSON.stringify(result))
    assert.ok(result.executionsPerJob >= 1, `${result.executionsPerJob} executions per job`)
    assert.ok(result.occupancy.length > 0 && result.occupancy.every(share => share >= 0 && share <= 1), `occupancy ${result.occupancy.join(' ')}`)
    assert.ok(result.gossipBytesPerPeerPerS > 0 && result.advertsPerPeerPerS > 0, 'no gossip measured')
    assert.notEqual(result.discoveryMs, null, 'the requesters never saw the new worker')
    for (const requester of result.requesters) {
      assert.equal(requester.completed, 150)
    }
    // the trace: every job accepted, each after an execution of its own input ran to the end
    const trace = result.trace
    assert.ok(trace != null, 'no trace')
    assert.equal(new Set(trace.accepted.map(a => a.input)).size, 300)
    for (const { input, atMs } of trace.accepted) {
      assert.ok(trace.executions.some(e => e.input === input && e.completed && e.endMs != null && e.endMs <= atMs), `${input} was accepted at ${atMs} ms with no execution of it finished`)
    }
  })
})
