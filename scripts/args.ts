/**
 * Command-line options of the scripts (`npm run sim`, `npm run bench`,
 * `npm run fuzz`): node:util's parseArgs, with `--help` printing the usage,
 * and an unknown option or a missing value answered with the usage and
 * exit code 2 instead of a stack trace.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util'

export function scriptArgs<const T extends ParseArgsOptionsConfig> (usage: string, options: T): ReturnType<typeof parseArgs<{ options: T }>>['values'] {
  let parsed
  try {
    parsed = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h' } } })
  } catch (err) {
    if (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) {
      console.error(`${err.message}\n\n${usage}`)
      process.exit(2)
    }
    throw err
  }
  if (parsed.values.help === true) {
    console.log(usage)
    process.exit(0)
  }
  return parsed.values as ReturnType<typeof parseArgs<{ options: T }>>['values']
}
