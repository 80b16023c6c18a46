import { gossipsub, type GossipSub, type GossipSubComponents } from '@libp2p/gossipsub'

/**
 * gossipsub as every wasmesh node runs it (Node, browser, bootstrap): strict
 * signing, so an advert's signer is its publisher; publishing with nobody
 * listening is not an error; and no IP-colocation penalty. That penalty
 * graylists every peer once more than ten share an IP, which is what many
 * phones behind carrier-grade NAT, a classroom of laptops, or a test on
 * loopback look like. Adverts are only hints: trust comes from verified
 * receipts, not from gossip scores.
 */
export function meshPubsub (): (components: GossipSubComponents) => GossipSub {
  return gossipsub({
    globalSignaturePolicy: 'StrictSign',
    allowPublishToZeroTopicPeers: true,
    scoreParams: { IPColocationFactorWeight: 0 }
  })
}
