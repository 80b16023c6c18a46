/**
 * Hostile peers built from our own libp2p stack, run as their own process
 * by the hostile tests (test/hostile.integration.test.ts):
 *
 *   node test/helpers/hostile-peer.ts <behaviour> --bootstrap <multiaddr> [--count N] [--target <multiaddr>] [--frames N]
 *
 * Behaviours, each advertising 1,024 free slots unless said otherwise:
 * - busy: answers `busy` to every job;
 * - silent: takes jobs and never says a word (N identities);
 * - heartbeat: takes jobs and sends heartbeats for ever, never a receipt;
 * - undialable: adverts whose addresses refuse connections (N identities);
 * - unserved-output: signs a valid receipt naming an output CID it never serves;
 * - frames: sends N tiny malformed frames to the worker at --target;
 * - adverts: floods adverts from N fresh identities through one connection.
 *
 * Prints `hostile ready <peer ids…>` once it is in place, and `frames sent N`
 * when a frame flood is done. Runs until killed.
 */
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { parseArgs } from 'node:util'
import { nodeLibp2pOptions } from '../../node/libp2p-options.ts'
import { ABIS } from '../../protocol/runtime/executor.ts'
import { CAPACITY_TOPIC, JOB_PROTOCOL, SOFTWARE_VERSION } from '../../protocol/constants.ts'
import { contentHash } from '../../protocol/wire/cbor.ts'
import { decodeJob } from '../../protocol/wire/job.ts'
import { decodeRequest, encodeMessage } from '../../protocol/wire/messages.ts'
import { encodeAdvert, type CapacityAdvert } from '../../protocol/wire/advert.ts'
import { encodeSignedReceipt, signReceipt } from '../../protocol/wire/receipt.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Libp2p, PrivateKey, Stream } from '@libp2p/interface'

type Behaviour = 'busy' | 'silent' | 'heartbeat' | 'undialable' | 'unserved-output' | 'frames' | 'adverts'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { bootstrap: { type: 'string' }, count: { type: 'string', default: '1' }, target: { type: 'string' }, frames: { type: 'string', default: '100000' } }
})
const behaviour = positionals[0] as Behaviour
const bootstrap = multiaddr(values.bootstrap as string)
const count = Number(values.count)

/** An advert that promises everything. */
function greedyAdvert (addrs: Uint8Array[], seq: number): CapacityAdvert {
  return { v: 1, slots: { total: 1024, free: 1024 }, memoryBytes: 4 * 1024 ** 3, storageBytes: 0, abis: [...ABIS], cached: [], addrs, version: SOFTWARE_VERSION, platform: 'node', seq, intervalMs: 5000 }
}

async function node (privateKey: PrivateKey, listen: boolean): Promise<Libp2p<{ pubsub: GossipSub }>> {
  const libp2p = await createLibp2p(nodeLibp2pOptions({ privateKey, listen: listen ? ['/ip4/127.0.0.1/tcp/0'] : [] })) as unknown as Libp2p<{ pubsub: GossipSub }>
  await libp2p.dial(bootstrap)
  libp2p.services.pubsub.subscribe(CAPACITY_TOPIC)
  return libp2p
}

/** Keeps advertising, so requesters that join later hear of it too. */
function advertise (libp2p: Libp2p<{ pubsub: GossipSub }>, addrs: () => Uint8Array[]): void {
  let seq = Date.now()
  const publish = (): void => { void libp2p.services.pubsub.publish(CAPACITY_TOPIC, encodeAdvert(greedyAdvert(addrs(), ++seq))).catch(() => {}) }
  publish()
  setInterval(publish, 500)
}

/** Serves the job protocol with `answer`, called for every request that decodes. */
async function serveJobs (libp2p: Libp2p, answer: (send: (message: Parameters<typeof encodeMessage>[0]) => void, request: ReturnType<typeof decodeRequest>) => Promise<void>): Promise<void> {
  await libp2p.handle(JOB_PROTOCOL, (stream: Stream) => {
    const lp = lpStream(stream)
    const send = (message: Parameters<typeof encodeMessage>[0]): void => { void lp.write(encodeMessage(message)).catch(() => {}) }
    void (async () => {
      try {
        while (true) {
          await answer(send, decodeRequest((await lp.read()).subarray()))
        }
      } catch {
        // the requester went away: nothing to do, hostile or not
      }
    })()
  }, { maxInboundStreams: 64 })
}

/** `count` identities that listen and serve the job protocol with `answer`; the first uses `key` if given. */
async function listening (answer: Parameters<typeof serveJobs>[1], key?: PrivateKey): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < count; i++) {
    const libp2p = await node(i === 0 && key != null ? key : await generateKeyPair('Ed25519'), true)
    await serveJobs(libp2p, answer)
    advertise(libp2p, () => libp2p.getMultiaddrs().map(ma => ma.bytes))
    ids.push(libp2p.peerId.toString())
  }
  return ids
}

async function undialable (): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < count; i++) {
    const libp2p = await node(await generateKeyPair('Ed25519'), false)
    // port 1 on loopback refuses every connection
    advertise(libp2p, () => [multiaddr(`/ip4/127.0.0.1/tcp/1/p2p/${libp2p.peerId.toString()}`).bytes])
    ids.push(libp2p.peerId.toString())
  }
  return ids
}

async function unservedOutput (): Promise<string[]> {
  const privateKey = await generateKeyPair('Ed25519')
  const worker = peerIdFromPrivateKey(privateKey).toString()
  return listening(async (send, request) => {
    if (request.type !== 'submit') {
      return
    }
    const job = await decodeJob(request.job)
    const nobodyHasIt = CID.createV1(0x55, await sha256.digest(crypto.getRandomValues(new Uint8Array(32))))
    const receipt = await signReceipt({ v: 1, job: job.cid, worker, exitCode: 0, output: nobodyHasIt, outputHash: await contentHash(new Uint8Array(2 * 1024 * 1024)), outputSize: 2 * 1024 * 1024, stderr: new Uint8Array(0), stats: { fetchMs: 0, compileMs: 0, execMs: 1, moduleCached: true }, timestamp: Date.now() }, privateKey)
    send({ type: 'receipt', id: request.id, receipt: encodeSignedReceipt(receipt) })
  }, privateKey)
}

async function frames (): Promise<void> {
  const libp2p = await node(await generateKeyPair('Ed25519'), false)
  const target = multiaddr(values.target as string)
  const total = Number(values.frames)
  let sent = 0
  while (sent < total) {
    try {
      const stream = await libp2p.dialProtocol(target, JOB_PROTOCOL)
      const lp = lpStream(stream)
      while (sent < total) {
        await lp.write(new Uint8Array([0xff, sent & 0xff]))
        sent++
      }
      stream.abort(new Error('done'))
    } catch {
      // reset for its garbage, or refused: open another and go on
      await new Promise(resolve => setTimeout(resolve, 5))
      sent++
    }
  }
  console.log(`frames sent ${sent}`)
}

/** Adverts from `count` fresh identities, all through one connection: gossipsub signs each as its author. */
async function adverts (): Promise<void> {
  const libp2p = await node(await generateKeyPair('Ed25519'), false)
  const pubsub = libp2p.services.pubsub as unknown as { publishConfig: unknown, publish: GossipSub['publish'] }
  await new Promise(resolve => setTimeout(resolve, 500))
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < count; i++) {
      const key = await generateKeyPair('Ed25519')
      const author = peerIdFromPrivateKey(key)
      pubsub.publishConfig = { type: 0, author, key: publicKeyToProtobuf(key.publicKey), privateKey: key }
      await pubsub.publish(CAPACITY_TOPIC, encodeAdvert(greedyAdvert([multiaddr(`/ip4/127.0.0.1/tcp/1/p2p/${author.toString()}`).bytes], Date.now()))).catch(() => {})
    }
  }
}

async function main (): Promise<string[]> {
  switch (behaviour) {
    case 'busy':
      return listening(async (send, request) => { send({ type: 'busy', id: request.id }) })
    case 'silent':
      return listening(async () => {})
    case 'heartbeat':
      return listening(async (send, request) => {
        send({ type: 'accepted', id: request.id })
        setInterval(() => { send({ type: 'alive', id: 0 }) }, 1000)
      })
    case 'undialable':
      return undialable()
    case 'unserved-output':
      return unservedOutput()
    case 'frames':
      await frames()
      return []
    case 'adverts':
      await adverts()
      return []
  }
}

console.log(`hostile ready ${(await main()).join(' ')}`)
