#!/usr/bin/env node
/**
 * The `wasmesh` command: checks the Node.js version before loading the CLI,
 * whose libraries would otherwise fail on an old Node far from the cause.
 */
// the default export: a named import of what Node 20 lacks would fail before the version check
import nodeModule from 'node:module'
import { unsupportedNodeMessage } from '../../node/node-version.ts'

const LONG_RUNNING = new Set(['peer', 'start', 'bootstrap', 'gateway'])
/** Values of the global options (--log-level, --log-format), which may come before the command. */
const GLOBAL_OPTION_VALUES = new Set(['error', 'warn', 'info', 'debug', 'text', 'json'])

function commandName (args: string[]): string | undefined {
  return args.find(arg => !arg.startsWith('-') && !GLOBAL_OPTION_VALUES.has(arg))
}

const unsupported = unsupportedNodeMessage()
if (unsupported != null) {
  console.error(unsupported)
  process.exit(1)
}
// V8's code for our libraries is cached on disk (in the OS temp dir): later starts compile about half as much.
// Not for the commands that run for days: Node keeps the whole cache in memory for the life of the
// process (~4 MiB of an idle worker's ~100), to save ~0.5 s once at start.
if (!LONG_RUNNING.has(commandName(process.argv.slice(2)) ?? '')) {
  nodeModule.enableCompileCache()
}
await import('./main.ts')
