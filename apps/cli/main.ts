/**
 * The wasmesh CLI: an app on the package's public API (node/index.ts). One
 * file per command under commands/; exit codes in options.ts.
 */
import { Command, CommanderError, Option } from 'commander'
import { SOFTWARE_VERSION, WasmeshError } from '../../node/index.ts'
import { appCommand } from './commands/app.ts'
import { bootstrapCommand } from './commands/bootstrap.ts'
import { deployCommand } from './commands/deploy.ts'
import { functionsCommand } from './commands/functions.ts'
import { gatewayCommand } from './commands/gateway.ts'
import { getCommand } from './commands/get.ts'
import { holdersCommand } from './commands/holders.ts'
import { peerCommand } from './commands/peer.ts'
import { runCommand } from './commands/run.ts'
import { startCommand } from './commands/start.ts'
import { statusCommand } from './commands/status.ts'
import { storeCommand } from './commands/store.ts'
import { verifyCommand } from './commands/verify.ts'
import { configureLog, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './log.ts'
import { EXIT_NETWORK, EXIT_USAGE, UsageError } from './options.ts'

/** Errors that mean the user's input was wrong, not the network. */
const USAGE_ERRORS = new Set(['MalformedMessageError', 'InvalidModuleError', 'InputTooLargeError', 'BatchNotFoundError', 'ListenError', 'DataDirError', 'InvalidManifestError'])

const program = new Command('wasmesh')
  .description('Run content-addressed Wasm jobs on a peer-to-peer network of browsers and Node peers, with signed receipts.')
  .version(SOFTWARE_VERSION)
  .addOption(new Option('--log-level <level>', 'what long-running commands log').choices(LOG_LEVELS).default('info'))
  .addOption(new Option('--log-format <format>', 'text for a terminal, json for one JSON object per line (time, level, msg, fields)').choices(LOG_FORMATS).default('text'))
  .showHelpAfterError()
  .hook('preAction', () => {
    const { logLevel, logFormat } = program.opts<{ logLevel: LogLevel, logFormat: LogFormat }>()
    configureLog(logLevel, logFormat)
  })

// commander would exit 1 on a bad flag: throw instead, so bad usage exits 2 like the rest
program.exitOverride()
for (const command of [startCommand(), bootstrapCommand(), peerCommand(), runCommand(), statusCommand(), verifyCommand(), appCommand(), storeCommand(), getCommand(), holdersCommand(), deployCommand(), functionsCommand(), gatewayCommand()]) {
  for (const sub of [command, ...command.commands]) {
    sub.exitOverride()
  }
  program.addCommand(command)
}

program.parseAsync().catch((err: Error) => {
  if (err instanceof CommanderError) {
    // commander has printed its message (or the help, or the version)
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE
    return
  }
  const hint = err instanceof WasmeshError && err.hint !== '' ? `\n${err.hint}` : ''
  console.error(`${err.name === 'Error' ? 'error' : err.name}: ${err.message}${hint}`)
  process.exitCode = err instanceof UsageError || USAGE_ERRORS.has(err.name) || !(err instanceof WasmeshError) ? EXIT_USAGE : EXIT_NETWORK
})
