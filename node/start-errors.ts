import { DataDirError, ListenError } from '../protocol/errors.ts'

/**
 * Turns what libp2p and LevelDB throw when a peer cannot start into errors a
 * user can act on: a port in use (libp2p's UnsupportedListenAddressesError,
 * which advises a config option the CLI does not have) and a data directory
 * that does not open (LevelDB's OpenFailedError, most often its lock).
 */
export function explainStartError (err: unknown, context: { dataDir?: string }): unknown {
  const error = err as Error
  if (error?.name === 'UnsupportedListenAddressesError') {
    const failed = [...error.message.matchAll(/^\s*(\/\S+): Error: (.*)$/gm)].map(([, addr, why]) => `${addr} (${why?.replace(/^listen /, '') ?? ''})`)
    return new ListenError(`could not listen on ${failed.length > 0 ? failed.join(', ') : 'its addresses'}`, { cause: err })
  }
  if (error?.name === 'OpenFailedError' && context.dataDir != null) {
    // LevelDB says only that it failed to open; a lock held by another process is by far the likeliest cause
    return new DataDirError(`could not open the database in ${context.dataDir}: another wasmesh process may be using it`, { cause: err })
  }
  return err
}
