/**
 * The frame fuzzer: a peer process (our own libp2p stack) that sends random
 * and mutated frames to a live worker and a live bootstrap node.
 *
 *   node scripts/fuzz/frames.ts --bootstrap <multiaddr> [--worker <multiaddr>] [--frames N] [--seed S]
 *
 * To the worker, on /wasmesh/job/1.0.0: length-prefixed frames drawn from
 * the job-request fuzzer (valid requests, mutated ones, reshaped dag-cbor,
 * random bytes: scripts/fuzz/decoders.ts), and now and then raw bytes that
 * break the framing itself (huge or truncated length prefixes) or a stream
 * dropped mid-frame. The worker resets a stream after 16 bad frames and
 * refuses a peer's streams after 3 resets a minute, so the fuzzer takes a
 * fresh identity whenever it is refused.
 *
 * To the bootstrap node: the same kinds of frames on gossipsub's own
 * protocol (/meshsub/1.2.0: random and mutated RPCs), and adverts drawn
 * from the advert fuzzer, published on the capacity topic.
 *
 * Prints `fuzz progress <sent>` every 10,000 frames and
 * `fuzz done worker <n> bootstrap <m> identities <k>` at the end.
 */
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { nodeLibp2pOptions } from '../../node/libp2p-options.ts'
import { CAPACITY_TOPIC, JOB_PROTOCOL } from '../../protocol/constants.ts'
import { scriptArgs } from '../args.ts'
import { decoderTargets, inputsFor, type DecoderTarget } from './decoders.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Libp2p, Stream } from '@libp2p/interface'

const USAGE = 'node scripts/fuzz/frames.ts --bootstrap <multiaddr> [--worker <multiaddr>] [--frames 10000] [--seed 1]: random and mutated frames to a live bootstrap node and worker'
const values = scriptArgs(USAGE, {
  bootstrap: { type: 'string' },
  worker: { type: 'string' },
  frames: { type: 'string', default: '10000' },
  seed: { type: 'string', default: '1' }
})
if (values.bootstrap == null) {
  console.error(`--bootstrap is required\n\n${USAGE}`)
  process.exit(2)
}
const bootstrap = multiaddr(values.bootstrap)
const total = Number(values.frames)
const seed = Number(values.seed)

const encoder = new TextEncoder()
/** A gossipsub RPC subscribing to the capacity topic: the seed of the RPC mutations. */
const topic = encoder.encode(CAPACITY_TOPIC)
const subOpts = new Uint8Array([0x08, 0x01, 0x12, topic.length, ...topic])
const subscribeRpc = new Uint8Array([0x0a, subOpts.length, ...subOpts])

/** What breaks the framing: a length prefix promising more than is sent, or far more than allowed. */
const rawFrames = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 64 }),
  fc.constant(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])),
  fc.tuple(fc.integer({ min: 2, max: 2 ** 20 }), fc.uint8Array({ maxLength: 32 })).map(([length, body]) => {
    const prefix: number[] = []
    let n = length
    while (n >= 0x80) { prefix.push((n & 0x7f) | 0x80); n >>>= 7 }
    prefix.push(n)
    return new Uint8Array([...prefix, ...body])
  })
)

type Peer = Libp2p<{ pubsub: GossipSub }>

async function freshPeer (): Promise<Peer> {
  const libp2p = await createLibp2p(nodeLibp2pOptions({ privateKey: await generateKeyPair('Ed25519'), listen: [] })) as unknown as Peer
  await libp2p.dial(bootstrap)
  return libp2p
}

/** Sends `frames` to `target` on `protocol`; counts what went out; takes a new identity when refused. */
class Sender {
  sent = 0
  identities = 0
  private peer?: Peer
  private readonly target: Multiaddr
  private readonly protocol: string

  constructor (target: Multiaddr, protocol: string) {
    this.target = target
    this.protocol = protocol
  }

  async send (frames: Uint8Array[], raw: Uint8Array[]): Promise<void> {
    let stream: Stream | undefined
    try {
      stream = await this.open()
      const lp = lpStream(stream)
      for (const frame of frames) {
        await lp.write(frame, { signal: AbortSignal.timeout(10_000) })
        this.sent++
      }
      for (const bytes of raw) {
        stream.send(bytes)
        this.sent++
      }
      // read what came back for a moment (errors, credit), then drop the stream mid-conversation
      await Promise.race([lp.read().catch(() => {}), new Promise(resolve => setTimeout(resolve, 20))])
      stream.abort(new Error('fuzzer moves on'))
    } catch {
      // reset for its garbage or refused: the next batch goes from a new identity
      stream?.abort(new Error('fuzzer moves on'))
      await Promise.resolve(this.peer?.stop()).catch(() => {})
      this.peer = undefined
    }
  }

  private async open (): Promise<Stream> {
    if (this.peer == null) {
      this.peer = await freshPeer()
      this.identities++
    }
    return this.peer.dialProtocol(this.target, this.protocol, { signal: AbortSignal.timeout(10_000) })
  }

  async stop (): Promise<void> {
    await Promise.resolve(this.peer?.stop()).catch(() => {})
  }
}

const targets = await decoderTargets()
const target = (name: string): DecoderTarget => targets.find(t => t.name === name) as DecoderTarget
const requestFrames = inputsFor(target('job request'))
const advertFrames = inputsFor(target('capacity advert'))
const rpcFrames = inputsFor({ name: 'rpc', decode: () => {}, seeds: [subscribeRpc] })

const worker = values.worker != null ? new Sender(multiaddr(values.worker), JOB_PROTOCOL) : undefined
const meshsub = new Sender(bootstrap, '/meshsub/1.2.0')
const publisher = await freshPeer()
publisher.services.pubsub.subscribe(CAPACITY_TOPIC)
let published = 0
let batch = 0
const sent = (): number => (worker?.sent ?? 0) + meshsub.sent + published
let nextReport = 10_000
while (sent() < total) {
  const batchSeed = seed * 1_000_003 + batch++
  const frames = fc.sample(requestFrames, { seed: batchSeed, numRuns: 12 })
  const raw = batch % 4 === 0 ? fc.sample(rawFrames, { seed: batchSeed, numRuns: 1 }) : []
  await worker?.send(frames, raw)
  if (batch % 4 === 0) {
    await meshsub.send(fc.sample(rpcFrames, { seed: batchSeed, numRuns: 8 }), raw)
    for (const advert of fc.sample(advertFrames, { seed: batchSeed, numRuns: 4 })) {
      await publisher.services.pubsub.publish(CAPACITY_TOPIC, advert).catch(() => {})
      published++
    }
  }
  if (sent() >= nextReport) {
    console.log(`fuzz progress ${sent()}`)
    nextReport += 10_000
  }
}
await worker?.stop()
await meshsub.stop()
await publisher.stop()
console.log(`fuzz done worker ${worker?.sent ?? 0} bootstrap ${meshsub.sent + published} identities ${(worker?.identities ?? 0) + meshsub.identities + 1}`)
process.exit(0)
