import { writeFile } from 'node:fs/promises'
import { Command } from 'commander'
import { createPeer } from '../../../node/index.ts'
import { stopWithin } from '../lifecycle.ts'
import { bootstrapOption } from '../options.ts'

export function getCommand (): Command {
  return new Command('get')
    .description('Fetch stored content by CID from its holders, every block checked against the CID; writes it to stdout or --out.')
    .argument('<cid>', 'the CID `wasmesh store` printed (a file)')
    .addOption(bootstrapOption())
    .option('--out <path>', 'write the bytes here rather than to stdout')
    .action(async (cid: string, options: { bootstrap?: string[], out?: string }) => {
      const peer = await createPeer({ bootstrap: options.bootstrap })
      try {
        const bytes = await peer.get(cid)
        if (options.out != null) {
          await writeFile(options.out, bytes)
        } else {
          process.stdout.write(bytes)
        }
      } finally {
        await stopWithin(peer)
      }
    })
}
