#!/usr/bin/env node
/**
 * The `wasmesh` command: checks the Node.js version before loading the CLI,
 * whose libraries would otherwise fail on an old Node far from the cause.
 */
import { unsupportedNodeMessage } from '../../node/node-version.ts'

const unsupported = unsupportedNodeMessage()
if (unsupported != null) {
  console.error(unsupported)
  process.exit(1)
}
await import('./main.ts')
