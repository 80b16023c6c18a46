import { join } from 'node:path'
import { Command } from 'commander'
import { createPeer, wasmeshHome } from '../../../node/index.ts'
import { logServedJobs } from '../format.ts'
import { onShutdown, stopWithin } from '../lifecycle.ts'
import { bootstrapOption, whole } from '../options.ts'

export function peerCommand (): Command {
  return new Command('peer')
    .description('Run a headless worker peer: joins the mesh, advertises capacity, runs jobs sandboxed, returns signed receipts.')
    .addOption(bootstrapOption())
    .option('--data <dir>', 'state directory: identity key, blockstore, datastore', join(wasmeshHome(), 'peer'))
    .option('--slots <n>', 'jobs to run at once', whole, 1)
    .option('--listen <multiaddr...>', 'addresses to listen on', ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'])
    .action(async (options: { bootstrap?: string[], data: string, slots: number, listen: string[] }) => {
      const peer = await createPeer({ bootstrap: options.bootstrap, dataDir: options.data, listen: options.listen, contribute: { threads: options.slots } })
      console.log(`peer ${peer.id} contributing ${options.slots} slot(s)`)
      for (const addr of peer.addresses()) {
        console.log(`listening ${addr}`)
      }
      logServedJobs(peer)
      onShutdown(async () => { await stopWithin(peer) })
    })
}
