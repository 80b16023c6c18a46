import type { Peer } from '../../node/index.ts'
import { log } from './log.ts'

/**
 * Stops a peer, waiting at most `ms`. A command whose work is done and
 * written must exit even when closing a connection hangs, which was seen
 * with WebRTC connections to browser tabs (node-datachannel).
 */
export async function stopWithin (peer: Peer, ms = 5_000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const stopped = await Promise.race([
    peer.stop().then(() => true),
    new Promise<false>(resolve => { timer = setTimeout(() => { resolve(false) }, ms) })
  ])
  clearTimeout(timer)
  if (!stopped) {
    log.warn(`warning: the peer did not finish stopping within ${ms} ms; exiting anyway`)
    process.exit(process.exitCode ?? 0)
  }
}

/** How long a one-shot command may take to exit by itself once its peer stopped. */
const EXIT_GRACE_MS = 1_000

/**
 * The end of a one-shot command, whose answer is written: stops the peer
 * (see stopWithin), then exits if something still holds the process a
 * second later. Seen in CI: `wasmesh app montecarlo` printed its answer,
 * stopped its peer and lived on until the test killed it 120 s later; what
 * held it is not known. The timer is unref'd, so a process that can exit
 * by itself does so at once.
 */
export async function finishCommand (peer: Peer): Promise<void> {
  await stopWithin(peer)
  setTimeout(() => { process.exit(process.exitCode ?? 0) }, EXIT_GRACE_MS).unref()
}

/**
 * For the long-running commands: runs `stop` on Ctrl-C or SIGTERM (a second
 * signal exits at once), and logs a stray rejection inside a library (a peer
 * that vanished mid-handshake, say) rather than dying of it: a bootstrap node
 * or worker going down for it would cost every peer that depends on it.
 */
export function onShutdown (stop: () => Promise<void>): void {
  process.on('unhandledRejection', reason => {
    log.warn(`warning: unhandled rejection, still running: ${reason instanceof Error ? reason.stack ?? reason.message : String(reason)}`)
  })
  let stopping = false
  const handler = (): void => {
    if (stopping) {
      process.exit(130)
    }
    stopping = true
    stop().then(() => process.exit(0), (err: Error) => {
      log.error(`error while stopping: ${err.message}`)
      process.exit(1)
    })
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
}
