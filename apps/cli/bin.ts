#!/usr/bin/env node
/**
 * The `wasmesh` command: checks the Node.js version before loading the CLI,
 * whose libraries would otherwise fail on an old Node far from the cause.
 */
// the default export: a named import of what Node 20 lacks would fail before the version check
import nodeModule from 'node:module'
import { unsupportedNodeMessage } from '../../node/node-version.ts'

const unsupported = unsupportedNodeMessage()
if (unsupported != null) {
  console.error(unsupported)
  process.exit(1)
}
// V8's code for our libraries is cached on disk (in the OS temp dir): later starts compile about half as much
nodeModule.enableCompileCache()
await import('./main.ts')
