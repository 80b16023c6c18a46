import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { decoderTargets, fuzzDecoder } from '../scripts/fuzz/decoders.ts'

/**
 * A short fuzzing run of every wire decoder (scripts/fuzz/decoders.ts); the
 * long one is `npm run fuzz`. The seed changes with every run and is printed,
 * so a failure can be replayed.
 */
describe('decoder fuzzing (fast-check)', async () => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31)
  const targets = await decoderTargets()
  for (const target of targets) {
    it(`${target.name}: 1,000 valid, random, mutated and reshaped inputs decode or fail with a typed error`, async (t: TestContext) => {
      const report = await fuzzDecoder(target, 1000, seed)
      t.diagnostic(`seed ${seed}: ${report.accepted} accepted, ${report.rejected} rejected`)
      assert.equal(report.failure, undefined, report.failure)
      assert.equal(report.inputs, 1000)
      // the inputs reach past the first check: some valid messages come through mutated and reshaped
      assert.ok(report.rejected > 0 && report.accepted > 0, `${report.accepted} accepted, ${report.rejected} rejected: the inputs do not exercise the decoder`)
    })
  }
})
