/**
 * Command-line options of the scripts (`npm run sim`, `npm run bench`,
 * `npm run fuzz` and the tools beside them): node:util's parseArgs, with `--help` printing the usage,
 * and an unknown option or a missing value answered with the usage and
 * exit code 2 instead of a stack trace.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util'

type Values<T extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<{ options: T }>>['values']

export function scriptArgs<const T extends ParseArgsOptionsConfig> (usage: string, options: T): Values<T> {
  let values: Record<string, unknown>
  try {
    values = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h' } } }).values
  } catch (err) {
    if (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) {
      console.error(`${err.message}\n\n${usage}`)
      process.exit(2)
    }
    throw err
  }
  if (values.help === true) {
    console.log(usage)
    process.exit(0)
  }
  return values as Values<T>
}
