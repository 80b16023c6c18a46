import { Command } from 'commander'
import { createPeer } from '../../../node/index.ts'
import { finishCommand } from '../lifecycle.ts'
import { bootstrapOption } from '../options.ts'
import { holdingJson } from './store.ts'

export function holdersCommand (): Command {
  return new Command('holders')
    .description('List the storage peers that hold a CID now, each with a valid signed storage receipt.')
    .argument('<cid>', 'the stored CID')
    .addOption(bootstrapOption())
    .option('--json', 'print one JSON object: cid, holders (peer ids) and their signed receipts')
    .action(async (cid: string, options: { bootstrap?: string[], json?: boolean }) => {
      const peer = await createPeer({ bootstrap: options.bootstrap })
      try {
        const holders = await peer.holders(cid)
        if (options.json === true) {
          console.log(JSON.stringify({ cid, holders: holders.map(h => h.peerId), receipts: holders.map(holdingJson) }))
          return
        }
        console.log(`${holders.length} holder(s) of ${cid}`)
        for (const holding of holders) {
          console.log(`${holding.peerId}  ${holding.receipt.size} bytes  until ${new Date(holding.receipt.until).toISOString()}`)
        }
      } finally {
        await finishCommand(peer)
      }
    })
}
