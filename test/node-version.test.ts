/**
 * The Node version check of the SDK and the CLI (node/node-version.ts) agrees
 * with package.json `engines` and with scripts/check-node.js, which guards
 * `npm start` and `npm test`; the installed CLI and SDK on a real old Node
 * are checked in test/package/package.test.ts.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { MIN_NODE_VERSION, unsupportedNodeMessage } from '../node/node-version.ts'
import { repoRoot } from './helpers/processes.ts'

test('the minimum Node version is package.json engines', async () => {
  const manifest = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } }
  assert.equal(`>=${MIN_NODE_VERSION.replace(/\.0$/, '')}`, manifest.engines.node)
})

test('older versions get one line naming the version needed and how to get it; newer ones none', () => {
  for (const old of ['20.20.2', '22.18.1', '18.0.0']) {
    const message = unsupportedNodeMessage(old)
    assert.ok(message != null, old)
    assert.match(message, new RegExp(`^wasmesh needs Node\\.js >= 22\\.19\\.0 \\(this is ${old.replace(/\./g, '\\.')}\\): install Node 24`))
    assert.doesNotMatch(message, /\n/)
  }
  for (const fine of ['22.19.0', '22.20.1', '24.21.0', '25.0.0']) {
    assert.equal(unsupportedNodeMessage(fine), undefined, fine)
  }
})

test('scripts/check-node.js lets this Node through', () => {
  const run = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'check-node.js')], { encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
})
