import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Command } from 'commander'
import { createPeer, localNetworkFile, startBootstrap, wasmeshHome, type BootstrapNode } from '../../../node/index.ts'
import { logServedJobs } from '../format.ts'
import { onShutdown, stopWithin } from '../lifecycle.ts'
import { size, whole } from '../options.ts'
import { log } from '../log.ts'

export function startCommand (): Command {
  return new Command('start')
    .description('Run the local network: a bootstrap/relay node serving the page, and one worker peer on loopback.')
    .option('--port <n>', 'bootstrap TCP port (WebSockets on port + 1)', whole, 4301)
    .option('--slots <n>', 'jobs the worker runs at once', whole, 2)
    .option('--data <dir>', 'state directory', join(wasmeshHome(), 'local'))
    .option('--http-port <n>', 'serve the web page on this port (0 picks one)', whole, 4300)
    .option('--host <addr>', 'interface the bootstrap node and the page listen on: a LAN address (or 0.0.0.0) lets phones on the LAN open the page and join', '127.0.0.1')
    .option('--storage <size>', 'storage the worker offers others for their content (e.g. 2GiB)', size, 0)
    .action(async (options: { port: number, slots: number, data: string, httpPort: number, host: string, storage: number }) => {
      const started: { node?: BootstrapNode } = {}
      // imported by the commands that serve HTTP only: node:http, imported as an ES module, makes Node load its
      // bundled undici (~3 MiB), which a `wasmesh peer` would carry for its whole life
      const { servePage } = await import('../page-server.ts')
      const page = await servePage({ port: options.httpPort, host: options.host, bootstrap: () => started.node?.addresses() ?? [] }).catch((err: Error) => {
        log.warn(`not serving the web page: ${err.message}`)
        return undefined
      })
      const node = await startBootstrap({ port: options.port, host: options.host, dataDir: join(options.data, 'bootstrap') })
      started.node = node
      const addresses = node.addresses()
      // a browser dials the worker directly to send it jobs (a relayed link carries none): on the same interfaces as the page
      const family = options.host.includes(':') ? 'ip6' : 'ip4'
      const listen = [`/${family}/${options.host}/tcp/0`, `/${family}/${options.host}/tcp/0/ws`]
      const peer = await createPeer({ bootstrap: addresses, listen, dataDir: join(options.data, 'peer'), storageBytes: options.storage, contribute: { threads: options.slots } })
      await mkdir(wasmeshHome(), { recursive: true })
      await writeFile(localNetworkFile(), JSON.stringify({ bootstrap: addresses, pid: process.pid }, null, 2))
      logServedJobs(peer)
      console.log('wasmesh local network is running.')
      console.log(`\nbootstrap/relay node ${node.peerId}:`)
      for (const addr of addresses) {
        console.log(`  ${addr}`)
      }
      console.log(`worker peer ${peer.id} with ${options.slots} slots`)
      if (page != null) {
        console.log(`\nweb page: ${page.urls.join('  ')}  (open it, switch on Contribute, run a job)`)
      }
      console.log('\nTry, in another terminal:')
      console.log('  npx wasmesh status')
      console.log('  npx wasmesh app montecarlo')
      console.log('\nPress Ctrl-C to stop.')
      onShutdown(async () => {
        await page?.close()
        await stopWithin(peer)
        await node.stop()
        await rm(localNetworkFile(), { force: true })
      })
    })
}
