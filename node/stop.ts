import type { Peer } from '../protocol/peer.ts'

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
    console.error(`warning: the peer did not finish stopping within ${ms} ms; exiting anyway`)
    process.exit(process.exitCode ?? 0)
  }
}
