import { Command } from 'commander'
import { createPeer } from '../../../node/index.ts'
import { finishCommand } from '../lifecycle.ts'
import { bootstrapOption, whole } from '../options.ts'

export function functionsCommand (): Command {
  return new Command('functions')
    .description('List the functions the mesh knows: address, version, module and ABI of the newest signed manifest of each.')
    .addOption(bootstrapOption())
    .option('--wait <ms>', 'how long to gather manifests from peers', whole, 2000)
    .option('--json', 'print JSON')
    .action(async (options: { bootstrap?: string[], wait: number, json?: boolean }) => {
      const peer = await createPeer({ bootstrap: options.bootstrap })
      try {
        await new Promise(resolve => setTimeout(resolve, options.wait))
        const functions = peer.functions().map(({ address, manifest }) => ({
          address,
          owner: manifest.owner,
          name: manifest.name,
          version: manifest.version,
          module: manifest.module.toString(),
          abi: manifest.abi,
          limits: manifest.limits,
          deployedAt: new Date(manifest.timestamp).toISOString()
        }))
        if (options.json === true) {
          console.log(JSON.stringify({ functions }))
          return
        }
        console.log(`${functions.length} function(s)`)
        for (const fn of functions) {
          console.log(`${fn.address}  v${fn.version}  ${fn.abi}  ${fn.module}  deployed ${fn.deployedAt}`)
        }
      } finally {
        await finishCommand(peer)
      }
    })
}
