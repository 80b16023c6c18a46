import assert from 'node:assert/strict'
import { describe, it, mock } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { capacityService, type AdvertContent } from '../protocol/net/capacity.ts'
import { decodeAdvert, encodeAdvert } from '../protocol/wire/advert.ts'
import { ADVERT_MIN_INTERVAL_MS, CAPACITY_TOPIC, MAX_JOB_MEMORY_BYTES } from '../protocol/constants.ts'
import type { GossipSub } from '@libp2p/gossipsub'

/** What CapacityService uses of gossipsub: it records what we publish, and hands in adverts as if from the topic. */
class FakePubsub extends EventTarget {
  readonly topicValidators = new Map<string, unknown>()
  readonly published: Uint8Array[] = []
  subscribe (): void {}
  unsubscribe (): void {}
  getSubscribers (): unknown[] {
    return [{}]
  }

  async publish (_topic: string, data: Uint8Array): Promise<void> {
    this.published.push(data)
  }
}

const advert = (free: number): AdvertContent => ({ v: 1, slots: { total: 2, free }, memoryBytes: MAX_JOB_MEMORY_BYTES, storageBytes: 0, abis: ['wasi'], cached: [], addrs: [], version: '0', platform: 'node' })

describe('capacity adverts', () => {
  it('a free-slot change is published only if the advert then says something new; a newcomer is answered either way', async (t) => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 })
    t.after(() => { mock.timers.reset() })
    const pubsub = new FakePubsub()
    const service = capacityService({ intervalMs: 60_000 })({ pubsub: pubsub as unknown as GossipSub, peerId: peerIdFromPrivateKey(await generateKeyPair('Ed25519')), events: new EventTarget() as never })
    service.start()
    t.after(() => { service.stop() })
    let free = 1
    service.setLocal(() => advert(free))
    assert.equal(pubsub.published.length, 1, 'starting to contribute is published at once')

    // a job starts and ends within the throttle: the slot is free again when it ends, nothing new to say
    free = 0
    service.publishSoon()
    free = 1
    service.publishSoon()
    mock.timers.tick(ADVERT_MIN_INTERVAL_MS)
    assert.equal(pubsub.published.length, 1, 'an unchanged advert was published again')

    // the slot is still taken when the throttle ends: that is news
    free = 0
    service.publishSoon()
    mock.timers.tick(ADVERT_MIN_INTERVAL_MS)
    assert.equal(pubsub.published.length, 2)
    assert.equal(decodeAdvert(pubsub.published[1] as Uint8Array).slots.free, 0)

    // a peer we never heard from: we answer with our advert, unchanged as it is
    const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const theirs = encodeAdvert({ ...advert(1), seq: 1, intervalMs: 5000 })
    pubsub.dispatchEvent(new CustomEvent('message', { detail: { type: 'signed', topic: CAPACITY_TOPIC, from: stranger, data: theirs } }))
    assert.equal(service.peers().length, 1, 'the stranger is in the table')
    mock.timers.tick(ADVERT_MIN_INTERVAL_MS)
    assert.equal(pubsub.published.length, 3, 'the newcomer was not answered')
  })
})
