import { join } from 'node:path'
import { Command, Option } from 'commander'
import { createPeer, wasmeshHome, type FunctionAbi } from '../../../node/index.ts'
import { finishCommand } from '../lifecycle.ts'
import { bootstrapOption, parseEnv, readUserFile, reputationDir, whole } from '../options.ts'

interface DeployCommandOptions {
  name: string
  abi: FunctionAbi
  env: string[]
  timeout: number
  memory: number
  maxOutput: number
  replicas: number
  storeReplicas?: number
  data: string
  bootstrap?: string[]
  json?: boolean
}

export function deployCommand (): Command {
  return new Command('deploy')
    .description('Publish a Wasm module as a function at <your peer id>/<name>: a manifest signed with your key, spread over the mesh. Returns once workers hold the module, so it keeps running while you are offline.')
    .argument('<module>', 'a .wasm file or a module CID')
    .requiredOption('--name <name>', 'the function\'s name: lower-case letters, digits, ".", "_" or "-"')
    .addOption(new Option('--abi <abi>', 'wagi: an HTTP request as CGI (env + stdin → headers + body); wasi or direct: the body is the input').choices(['wagi', 'wasi', 'direct']).default('wagi'))
    .option('--env <KEY=VALUE...>', 'environment every call gets', [])
    .option('--timeout <ms>', 'wall-time limit of each call', whole, 30_000)
    .option('--memory <MiB>', 'Wasm memory limit of each call', whole, 256)
    .option('--max-output <bytes>', 'output size limit of each call', whole, 16 * 1024 * 1024)
    .option('--replicas <n>', 'workers that must hold the module (and have it compiled) before deploy returns; 0: publish only', whole, 1)
    .option('--store-replicas <n>', 'storage peers that must pin the module (default: up to 3 of those offering storage; 0: none)', whole)
    .option('--data <dir>', 'the owner\'s state directory: its identity key is what owns the function, so keep it to deploy new versions', join(wasmeshHome(), 'owner'))
    .addOption(bootstrapOption())
    .option('--json', 'print one JSON object (address, version, module, holders, stored)')
    .action(async (modulePath: string, options: DeployCommandOptions) => {
      const module = /^(bafy|bafk|Qm)/.test(modulePath) ? modulePath : await readUserFile(modulePath, 'the module')
      const peer = await createPeer({ bootstrap: options.bootstrap, dataDir: options.data, reputationDir: reputationDir() })
      try {
        const deployment = await peer.deploy({
          name: options.name,
          module,
          abi: options.abi,
          env: parseEnv(options.env),
          limits: { timeoutMs: options.timeout, memoryBytes: options.memory * 1024 * 1024, outputBytes: options.maxOutput },
          replicas: options.replicas,
          ...(options.storeReplicas !== undefined ? { storeReplicas: options.storeReplicas } : {})
        })
        const { manifest } = deployment
        if (options.json === true) {
          console.log(JSON.stringify({ address: deployment.address, owner: manifest.owner, name: manifest.name, version: manifest.version, module: manifest.module.toString(), abi: manifest.abi, holders: deployment.holders, stored: deployment.stored, reached: deployment.reached }))
          return
        }
        console.log(`deployed ${deployment.address}`)
        console.log(`  version ${manifest.version}, module ${manifest.module.toString()}, abi ${manifest.abi}`)
        if (deployment.reached === 0) {
          console.error('warning: no peer confirmed it holds the manifest; it may not have spread (deploy again once peers are online)')
        }
        console.log(`  manifest held by ${deployment.reached} neighbour(s)`)
        console.log(`  module held by ${deployment.holders.length} worker(s)${deployment.holders.length > 0 ? `: ${deployment.holders.join(', ')}` : ''}`)
        console.log(`  module pinned by ${deployment.stored.length} storage peer(s)${deployment.stored.length > 0 ? `: ${deployment.stored.join(', ')}` : ' (none offers storage: start one with wasmesh peer --storage 1GiB)'}`)
        console.log(`  call it: wasmesh gateway --port 8080, then http://127.0.0.1:8080/fn/${deployment.address}/`)
      } finally {
        await finishCommand(peer)
      }
    })
}
