import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { InvalidPinOrderError, InvalidReceiptError, MalformedMessageError, StorageFullError } from '../protocol/errors.ts'
import { rankHolders } from '../protocol/storage/placement.ts'
import { decodeAdvert, encodeAdvert, type CapacityAdvert } from '../protocol/wire/advert.ts'
import { encodeCbor } from '../protocol/wire/cbor.ts'
import { checkPinOrder, decodePinRecord, decodeStoreRequest, decodeStoreResponse, encodePinRecord, signPinOrder, signStorageReceipt, verifyStorageReceipt, type PinOrder } from '../protocol/wire/storage.ts'
import { createTestnet, type Testnet } from './helpers/testnet.ts'
import { eventually } from './helpers/processes.ts'
import type { PeerCapacity } from '../protocol/net/capacity.ts'
import type { Peer } from '../protocol/peer.ts'
import type { PrivateKey } from '@libp2p/interface'

const MiB = 1024 * 1024
const cid = CID.createV1(0x55, await sha256.digest(new Uint8Array([1, 2, 3])))

async function identity (): Promise<{ key: PrivateKey, id: string }> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}

/** Polls `check` until it holds, or fails with `what` after `ms`. */
describe('storage receipts, pin orders and their decoders', () => {
  it('a storage receipt verifies against its holder, and an edited, misattributed or expired one does not', async () => {
    const holder = await identity()
    const signed = await signStorageReceipt({ v: 1, holder: holder.id, cid, size: 3, until: Date.now() + 60_000, owner: holder.id, at: Date.now() }, holder.key)
    const receipt = await verifyStorageReceipt(signed, { cid, holder: holder.id, now: Date.now() })
    assert.equal(receipt.size, 3)
    // a copy: the payload may be a Buffer, whose slice() shares the bytes, and the edit must not reach `signed`
    const edited = { ...signed, payload: new Uint8Array(signed.payload) }
    edited.payload.set([(edited.payload.at(-1) ?? 0) ^ 1], edited.payload.length - 1)
    await assert.rejects(verifyStorageReceipt(edited), (err: Error) => err.name === InvalidReceiptError.NAME || err.name === MalformedMessageError.NAME)
    const other = await identity()
    await assert.rejects(verifyStorageReceipt(signed, { holder: other.id }), { name: InvalidReceiptError.NAME })
    await assert.rejects(verifyStorageReceipt(signed, { now: Date.now() + 120_000 }), { name: InvalidReceiptError.NAME })
  })

  it('a pin order counts only from its owner, and a renewal only from the owner or a renewer it named', async () => {
    const owner = await identity()
    const renewer = await identity()
    const stranger = await identity()
    const now = Date.now()
    const order: PinOrder = { v: 1, cid, size: 3, replicas: 2, until: now + 1000, owner: owner.id, signer: owner.id, renewers: [renewer.id], at: now }
    const first = await signPinOrder(order, owner.key)
    assert.equal((await checkPinOrder(first, undefined, now)).until, now + 1000)
    const byRenewer = await signPinOrder({ ...order, until: now + 5000, signer: renewer.id }, renewer.key)
    assert.equal((await checkPinOrder(first, byRenewer, now)).until, now + 5000)
    const byStranger = await signPinOrder({ ...order, until: now + 5000, signer: stranger.id }, stranger.key)
    await assert.rejects(checkPinOrder(first, byStranger, now), { name: InvalidPinOrderError.NAME })
    // a stranger's order naming someone else as owner is not an order
    await assert.rejects(checkPinOrder(byStranger, undefined, now), { name: InvalidPinOrderError.NAME })
    // signed by someone other than the signer it names
    await assert.rejects(checkPinOrder(await signPinOrder(order, stranger.key), undefined, now), { name: InvalidPinOrderError.NAME })
    await assert.rejects(checkPinOrder(first, undefined, now + 2000), { name: InvalidPinOrderError.NAME })
  })

  it('decoders refuse malformed requests, answers, records and adverts, naming the field', async () => {
    const owner = await identity()
    const order = await signPinOrder({ v: 1, cid, size: 3, replicas: 1, until: Date.now() + 1000, owner: owner.id, signer: owner.id, renewers: [], at: Date.now() }, owner.key)
    assert.deepEqual(decodeStoreRequest(encodeCbor({ type: 'pin', order, holders: [owner.id] })).type, 'pin')
    for (const bad of [
      { type: 'pin', order, holders: ['not a peer id'] },
      { type: 'pin', order, holders: [], extra: 1 },
      { type: 'challenge', cid },
      { type: 'wipe', cid },
      { type: 'status', cid: 'bafy' }
    ]) {
      assert.throws(() => decodeStoreRequest(encodeCbor(bad)), { name: MalformedMessageError.NAME }, JSON.stringify(Object.keys(bad)))
    }
    assert.throws(() => decodeStoreRequest(new Uint8Array([0xff, 0x00])), { name: MalformedMessageError.NAME })
    assert.throws(() => decodeStoreResponse(encodeCbor({ type: 'proof', hash: 'text' })), { name: MalformedMessageError.NAME })
    assert.throws(() => decodeStoreRequest(encodeCbor({ type: 'challenge', cid, block: cid, nonce: new Uint8Array(65) })), { name: MalformedMessageError.NAME })
    assert.throws(() => decodeStoreResponse(encodeCbor({ type: 'error', error: { name: 1 } })), { name: MalformedMessageError.NAME })
    const record = { v: 1 as const, order, receipt: order, holders: [owner.id] }
    assert.deepEqual(decodePinRecord(encodePinRecord(record)).holders, [owner.id])
    assert.throws(() => decodePinRecord(encodeCbor({ ...record, v: 2 })), { name: MalformedMessageError.NAME })
    const advert: CapacityAdvert = { v: 1, slots: { total: 1, free: 1 }, memoryBytes: 1, storageBytes: 10, storageFree: 4, storageVolatile: true, abis: ['wasi'], cached: [], addrs: [], version: '0', platform: 'browser', seq: 1, intervalMs: 5000 }
    assert.deepEqual(decodeAdvert(encodeAdvert(advert)), advert)
    assert.throws(() => decodeAdvert(encodeCbor({ ...advert, storageFree: 11 })), { name: MalformedMessageError.NAME })
  })

  it('placement leaves out peers without room or with a ban, and spreads replicas over hosts first', () => {
    const peer = (peerId: string, host: string, free: number): PeerCapacity => ({
      peerId,
      seenAt: 0,
      firstSeenAt: 0,
      advert: { v: 1, slots: { total: 1, free: 1 }, memoryBytes: 1, storageBytes: free, abis: ['wasi'], cached: [], addrs: [multiaddr(`/ip4/${host}/tcp/4001`).bytes], version: '0', platform: 'node', seq: 1, intervalMs: 5000 }
    })
    const peers = [peer('a1', '10.0.0.1', 100), peer('a2', '10.0.0.1', 90), peer('b1', '10.0.0.2', 50), peer('small', '10.0.0.3', 5), peer('banned', '10.0.0.4', 100)]
    const ranked = rankHolders(peers, { size: 10, exclude: new Set(), score: id => id === 'banned' ? 0 : 0.5 })
    assert.deepEqual(ranked, ['a1', 'b1', 'a2'])
    assert.deepEqual(rankHolders(peers, { size: 10, exclude: new Set(['a1']), score: () => 0.5 }), ['banned', 'a2', 'b1'])
  })
})

describe('storage on real peers in this process', () => {
  let testnet: Testnet
  let holders: Peer[]
  /** One uploader for every test: a peer costs seconds to start on a loaded machine. */
  let client: Peer
  const storage = async (bytes: number, extra: Parameters<Testnet['requester']>[0] = {}): Promise<Peer> =>
    testnet.requester({ storageBytes: bytes, storageCheckIntervalMs: 400, contribute: { threads: 1 }, ...extra })

  before(async () => {
    testnet = await createTestnet(0)
    ;[holders, client] = await Promise.all([Promise.all([storage(64 * MiB), storage(64 * MiB), storage(64 * MiB)]), testnet.requester()])
  })

  after(async () => {
    await testnet?.stop()
  })

  it('a peer offering 10 MiB refuses a 20 MiB pin with StorageFullError, and stays up', async () => {
    const small = await storage(10 * MiB)
    await assert.rejects(client.store(randomBytes(20 * MiB), { replicas: 1, on: [small.id] }), (err: Error) => {
      assert.equal(err.name, StorageFullError.NAME)
      assert.match(err.message, /10\.0 MiB/)
      return true
    })
    assert.equal(small.storageStats().usedBytes, 0)
    // and still takes what fits
    const fits = await client.store(randomBytes(2 * MiB), { replicas: 1, on: [small.id] })
    assert.deepEqual(fits.holders.map(h => h.peerId), [small.id])
    await small.stop()
  })

  it('a file of 25 blocks, more than are fetched at once, is counted and pinned whole: every block once, the size exact', async () => {
    const bytes = randomBytes(24 * MiB + 1234)
    const stored = await client.store(bytes, { replicas: 1, on: [(holders[0] as Peer).id] })
    // UnixFS: 1 MiB raw leaves under one dag-pb root; the size counts every block's bytes, the root's too
    assert.ok(stored.size > bytes.length && stored.size < bytes.length + 4096, `size ${stored.size} for ${bytes.length} bytes of content`)
    assert.equal(stored.holders[0]?.receipt.size, stored.size)
    assert.deepEqual(await (holders[1] as Peer).get(stored.cid), new Uint8Array(bytes))
  })

  it('a pin is renewed by a renewer the owner named (not by anyone else), and collected from every holder once it expired', async () => {
    const [stranger, renewer] = [holders[1] as Peer, holders[2] as Peer]
    // two pins at once: a long one to renew, a short one to expire (a short ttl could run out before a loaded machine renews it)
    const [kept, stored] = await Promise.all([
      client.store(randomBytes(MiB), { replicas: 2, ttl: 120_000, renewers: [renewer.id] }),
      client.store(randomBytes(MiB), { replicas: 2, ttl: 8000 })
    ])
    assert.equal(stored.holders.length, 2)
    await assert.rejects(stranger.renew(kept.cid, { ttl: 600_000 }), { name: InvalidPinOrderError.NAME })
    const renewed = await renewer.renew(kept.cid, { ttl: 600_000 })
    assert.equal(renewed.length, 2)
    for (const holding of renewed) {
      assert.ok(holding.receipt.until > kept.until, 'the renewed receipt does not run longer')
    }
    const holding = holders.filter(h => stored.holders.some(s => s.peerId === h.id))
    assert.equal(holding.length, 2)
    const used = holding.map(h => h.storageStats().usedBytes)
    assert.ok(await eventually(() => holding.every((h, i) => h.storageStats().usedBytes <= (used[i] as number) - stored.size), 30_000, 200), 'the expired pin is gone from both holders within 30 s')
    assert.deepEqual(await client.holders(stored.cid, { waitMs: 0 }), [])
  })

  it('a holder that drops what it pinned is caught by a check, blamed, and replaced', async () => {
    const liar = await storage(64 * MiB, { fault: 'drop-stored' })
    const [honest, spare] = holders as [Peer, Peer]
    const stored = await client.store(randomBytes(3 * MiB), { replicas: 2, on: [liar.id, honest.id] })
    assert.deepEqual(stored.holders.map(h => h.peerId).sort(), [liar.id, honest.id].sort())
    const spareHeld = spare.storageStats().pins
    const third = holders[2] as Peer
    const thirdHeld = third.storageStats().pins
    assert.ok(await eventually(() => spare.storageStats().pins > spareHeld || third.storageStats().pins > thirdHeld, 60_000, 200), 'a new replica replaces the liar within 60 s')
    const evidence = await honest.storageEvidence(liar.id)
    assert.ok(evidence.length > 0, 'no evidence kept against the liar')
    assert.equal(evidence[0]?.cid, stored.cid.toString())
    assert.ok(evidence[0]?.receipt != null, 'the liar\'s own receipt is not in the evidence')
    assert.ok((honest.workers().find(w => w.peerId === liar.id)?.record.failures ?? 0) > 0, 'the liar\'s record shows no failure')
    await liar.stop()
  })
})
