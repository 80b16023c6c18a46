import { Command } from 'commander'
import { createPeer } from '../../../node/index.ts'
import { finishCommand } from '../lifecycle.ts'
import { bootstrapOption, whole } from '../options.ts'

export function statusCommand (): Command {
  return new Command('status')
    .description('List the peers advertising capacity, and what they offer.')
    .addOption(bootstrapOption())
    .option('--wait <ms>', 'how long to listen for adverts', whole, 3000)
    .option('--json', 'print JSON')
    .action(async (options: { bootstrap?: string[], wait: number, json?: boolean }) => {
      const peer = await createPeer({ bootstrap: options.bootstrap })
      try {
        await new Promise(resolve => setTimeout(resolve, options.wait))
        const peers = peer.peers().map(({ peerId, advert, seenAt }) => ({
          peerId,
          platform: advert.platform,
          slots: advert.slots,
          memoryMiB: Math.floor(advert.memoryBytes / 1024 / 1024),
          storageBytes: advert.storageBytes,
          storageFree: advert.storageFree ?? advert.storageBytes,
          ...(advert.storageVolatile === true ? { storageVolatile: true } : {}),
          abis: advert.abis,
          cached: advert.cached.map(cid => cid.toString()),
          version: advert.version,
          intervalMs: advert.intervalMs,
          ageMs: Date.now() - seenAt
        }))
        if (options.json === true) {
          console.log(JSON.stringify({ peers }))
          return
        }
        console.log(`${peers.length} peer(s) advertising capacity`)
        for (const p of peers) {
          console.log(`${p.peerId}  ${p.platform}  slots ${p.slots.free}/${p.slots.total} free  mem ${p.memoryMiB} MiB  abis ${p.abis.join(',')}  cached ${p.cached.length} module(s)${p.storageBytes > 0 ? `  storage ${Math.floor(p.storageFree / 1024 / 1024)}/${Math.floor(p.storageBytes / 1024 / 1024)} MiB free${p.storageVolatile === true ? ' (volatile)' : ''}` : ''}  v${p.version}`)
        }
      } finally {
        await finishCommand(peer)
      }
    })
}
