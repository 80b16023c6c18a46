/**
 * What the long-running commands (start, bootstrap, peer, gateway) say while
 * they run, by level, as text for a terminal or as JSON lines for a log
 * collector (`--log-level`, `--log-format` on every command). Info and debug
 * go to stdout, warnings and errors to stderr. The text form is the message
 * alone, as people and scripts have read it so far; the JSON form adds the
 * time, the level and the fields.
 */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
export type LogLevel = typeof LOG_LEVELS[number]
export const LOG_FORMATS = ['text', 'json'] as const
export type LogFormat = typeof LOG_FORMATS[number]

export type LogFields = Record<string, string | number | boolean | undefined>

const settings: { level: LogLevel, format: LogFormat } = { level: 'info', format: 'text' }

/** Set once from the command line, before a command runs. */
export function configureLog (level: LogLevel, format: LogFormat): void {
  settings.level = level
  settings.format = format
}

function write (level: LogLevel, message: string, fields: LogFields): void {
  if (LOG_LEVELS.indexOf(level) > LOG_LEVELS.indexOf(settings.level)) {
    return
  }
  const line = settings.format === 'json'
    ? JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })
    : message
  if (level === 'error' || level === 'warn') {
    process.stderr.write(`${line}\n`)
  } else {
    process.stdout.write(`${line}\n`)
  }
}

export const log = {
  error: (message: string, fields: LogFields = {}): void => { write('error', message, fields) },
  warn: (message: string, fields: LogFields = {}): void => { write('warn', message, fields) },
  info: (message: string, fields: LogFields = {}): void => { write('info', message, fields) },
  debug: (message: string, fields: LogFields = {}): void => { write('debug', message, fields) }
}
