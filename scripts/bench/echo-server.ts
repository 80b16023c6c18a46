/**
 * The raw-libp2p baseline's server: a bare libp2p node built with the same
 * options as a Node peer (node/libp2p-options.ts), answering
 * '/wasmesh-bench/echo/1.0.0' by echoing each length-prefixed frame on the
 * same long-lived stream. Prints its multiaddr and runs until killed.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { createLibp2p } from 'libp2p'
import { nodeLibp2pOptions } from '../../node/libp2p-options.ts'

export const ECHO_PROTOCOL = '/wasmesh-bench/echo/1.0.0'

if (import.meta.main) {
  const libp2p = await createLibp2p(nodeLibp2pOptions({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0']
  }))
  await libp2p.handle(ECHO_PROTOCOL, async stream => {
    const lp = lpStream(stream)
    try {
      while (true) {
        const frame = await lp.read()
        await lp.write(frame.subarray())
      }
    } catch {
      // end of stream
    }
  })
  for (const addr of libp2p.getMultiaddrs()) {
    console.log(addr.toString())
  }
}
