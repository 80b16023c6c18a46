import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { MAX_STORE_MESSAGE_BYTES, STORE_PROTOCOL } from '../constants.ts'
import { decodeStoreResponse, encodeStoreMessage, type StoreRequest, type StoreResponse } from '../wire/storage.ts'
import type { CapacityService } from '../net/capacity.ts'
import type { Libp2p } from '@libp2p/interface'

export interface StoreRpcComponents {
  libp2p: Pick<Libp2p, 'dialProtocol' | 'peerStore'>
  capacity: Pick<CapacityService, 'get'>
}

/**
 * Sends one store-protocol request to a peer, on a stream of its own, and
 * returns the answer. Dials the addresses the peer advertised (a tab is
 * reachable only there). Requests are rare (pins, checks every minute or
 * so), so a stream per request costs nothing worth keeping streams for.
 */
export async function askStorePeer (components: StoreRpcComponents, peerId: string, request: StoreRequest, signal: AbortSignal): Promise<StoreResponse> {
  const { libp2p, capacity } = components
  const id = peerIdFromString(peerId)
  const addrs = capacity.get(peerId)?.advert.addrs ?? []
  if (addrs.length > 0) {
    await libp2p.peerStore.merge(id, { multiaddrs: addrs.map(bytes => multiaddr(bytes)) })
  }
  const stream = await libp2p.dialProtocol(id, STORE_PROTOCOL, { signal })
  try {
    const lp = lpStream(stream, { maxDataLength: MAX_STORE_MESSAGE_BYTES })
    await lp.write(encodeStoreMessage(request), { signal })
    const answer = decodeStoreResponse((await lp.read({ signal })).subarray())
    await stream.close({ signal }).catch(() => {})
    return answer
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}
