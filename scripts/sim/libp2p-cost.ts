/**
 * What one full libp2p node per simulated peer would cost: starts `--nodes`
 * bare libp2p nodes in this process (our Node options: TCP on loopback,
 * noise, yamux, gossipsub, identify) around one hub, each subscribed to the
 * capacity topic, and prints the RSS and CPU they take while idle. The
 * reason docs/scale.md gives for simulating peers on a lighter model.
 *
 *   node --expose-gc scripts/sim/libp2p-cost.ts [--nodes 32] [--idle 20]
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createLibp2p, type Libp2p } from 'libp2p'
import { nodeLibp2pOptions } from '../../node/libp2p-options.ts'
import { CAPACITY_TOPIC } from '../../protocol/constants.ts'
import { scriptArgs } from '../args.ts'
import type { GossipSub } from '@libp2p/gossipsub'

const values = scriptArgs('node --expose-gc scripts/sim/libp2p-cost.ts [--nodes 32] [--idle 20]: the RSS and CPU of that many idle libp2p nodes in one process', {
  nodes: { type: 'string', default: '32' },
  idle: { type: 'string', default: '20' }
})
const count = Number(values.nodes)
const rss = (): number => { globalThis.gc?.(); return process.memoryUsage().rss / 2 ** 20 }

const before = rss()
const nodes: Array<Libp2p<{ pubsub: GossipSub }>> = []
for (let i = 0; i < count; i++) {
  const node = await createLibp2p(nodeLibp2pOptions({ privateKey: await generateKeyPair('Ed25519'), listen: i === 0 ? ['/ip4/127.0.0.1/tcp/0'] : [] })) as unknown as Libp2p<{ pubsub: GossipSub }>
  node.services.pubsub.subscribe(CAPACITY_TOPIC)
  if (i > 0) {
    await node.dial((nodes[0] as Libp2p).getMultiaddrs()[0] as never)
  }
  nodes.push(node)
}
await new Promise(resolve => setTimeout(resolve, 2000))
const built = rss()
const cpu = process.cpuUsage()
await new Promise(resolve => setTimeout(resolve, Number(values.idle) * 1000))
const used = process.cpuUsage(cpu)
const perNode = (built - before) / count
console.log(JSON.stringify({ nodes: count, rssBeforeMiB: Math.round(before), rssMiB: Math.round(built), perNodeMiB: Math.round(perNode * 10) / 10, idleCpuPerNodePerS: Math.round((used.user + used.system) / 1000 / Number(values.idle) / count * 100) / 100, unit: 'ms of CPU per node per second while idle' }))
await Promise.all(nodes.map(async node => { await node.stop() }))
