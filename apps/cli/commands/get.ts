import { Command } from 'commander'
import { createPeer } from '../../../node/index.ts'
import { finishCommand } from '../lifecycle.ts'
import { bootstrapOption, UsageError } from '../options.ts'
import { writeTree } from '../trees.ts'

export function getCommand (): Command {
  return new Command('get')
    .description('Fetch stored content by CID from its holders, every block checked against the CID: a file to stdout or --out, a folder (stored from a folder) to --out.')
    .argument('<cid>', 'the CID `wasmesh store` printed')
    .addOption(bootstrapOption())
    .option('--out <path>', 'write the file, or create the folder, here rather than writing a file to stdout')
    .action(async (cid: string, options: { bootstrap?: string[], out?: string }) => {
      const peer = await createPeer({ bootstrap: options.bootstrap })
      try {
        const entry = await peer.getEntry(cid)
        if (options.out != null) {
          await writeTree(entry, options.out)
        } else if (entry.type === 'file') {
          process.stdout.write(entry.content)
        } else {
          throw new UsageError(`${cid} is a ${entry.type === 'directory' ? 'folder' : 'symlink'}: give --out PATH to write it`)
        }
      } finally {
        await finishCommand(peer)
      }
    })
}
