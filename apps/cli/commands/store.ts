import { readFile, stat } from 'node:fs/promises'
import { Command } from 'commander'
import { createPeer, encodeSigned, type Holding } from '../../../node/index.ts'
import { finishCommand } from '../lifecycle.ts'
import { bootstrapOption, duration, positive } from '../options.ts'
import { readLocalTree } from '../trees.ts'
import { toString } from 'uint8arrays/to-string'

/** A holding as the CLI prints it: the signed receipt in base64, for `verifyStorageReceipt`. */
export function holdingJson (holding: Holding): Record<string, unknown> {
  return { peerId: holding.peerId, size: holding.receipt.size, until: new Date(holding.receipt.until).toISOString(), receipt: toString(encodeSigned(holding.signed), 'base64') }
}

export function storeCommand (): Command {
  return new Command('store')
    .description('Keep a file or folder on K distinct storage peers, which check each other and repair the set without you. Prints its CID.')
    .argument('<path>', 'a file (stored as one UnixFS file) or a folder (a UnixFS directory)')
    .addOption(bootstrapOption())
    .option('--replicas <k>', 'distinct storage peers to keep it on', positive, 3)
    .option('--ttl <duration>', 'how long they keep it (renew before then): 30d, 12h, 90s…', duration, 30 * 24 * 3600 * 1000)
    .option('--renewer <peer-id...>', 'peers allowed to renew the pin besides this one', [])
    .option('--json', 'print one JSON object: cid, size, until, holders (peer ids) and their signed receipts')
    .action(async (path: string, options: { bootstrap?: string[], replicas: number, ttl: number, renewer: string[], json?: boolean }) => {
      const isDir = (await stat(path)).isDirectory()
      const peer = await createPeer({ bootstrap: options.bootstrap })
      try {
        const content = isDir ? await peer.addTree(await readLocalTree(path)) : await readFile(path)
        const result = await peer.store(content instanceof Uint8Array ? new Uint8Array(content) : content, { replicas: options.replicas, ttl: options.ttl, renewers: options.renewer })
        if (options.json === true) {
          console.log(JSON.stringify({ cid: result.cid.toString(), size: result.size, until: new Date(result.until).toISOString(), holders: result.holders.map(h => h.peerId), receipts: result.holders.map(holdingJson) }))
        } else {
          console.log(result.cid.toString())
          for (const holding of result.holders) {
            console.error(`held by ${holding.peerId} until ${new Date(holding.receipt.until).toISOString()}`)
          }
        }
        if (result.holders.length < options.replicas) {
          console.error(`warning: ${result.holders.length} of ${options.replicas} replicas placed; the holders add the rest as storage peers appear`)
        }
      } finally {
        await finishCommand(peer)
      }
    })
}
