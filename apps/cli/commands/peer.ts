import { join } from 'node:path'
import { Command } from 'commander'
import { createPeer, wasmeshHome } from '../../../node/index.ts'
import { logServedJobs } from '../format.ts'
import { onShutdown, stopWithin } from '../lifecycle.ts'
import { bootstrapOption, size, whole } from '../options.ts'
import { log } from '../log.ts'

export function peerCommand (): Command {
  return new Command('peer')
    .description('Run a headless worker peer: joins the mesh, advertises capacity, runs jobs sandboxed, returns signed receipts.')
    .addOption(bootstrapOption())
    .option('--data <dir>', 'state directory: identity key, blockstore, datastore', join(wasmeshHome(), 'peer'))
    .option('--slots <n>', 'jobs to run at once', whole, 1)
    .option('--listen <multiaddr...>', 'addresses to listen on', ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'])
    .option('--storage <size>', 'storage to offer others for their content (e.g. 2GiB); 0 offers none', size, 0)
    .option('--storage-check <ms>', 'mean time between storage upkeep rounds: checking fellow holders, repairing, collecting expired pins', whole)
    .option('--metrics-port <n>', 'serve Prometheus metrics (libp2p\'s, the process\'s, wasmesh_* jobs, slots and storage) at /metrics and a health check at /healthz on this port; 0 picks one. The URL goes to stderr', whole)
    .option('--metrics-host <ip>', 'interface the metrics are served on', '127.0.0.1')
    .action(async (options: { bootstrap?: string[], data: string, slots: number, listen: string[], storage: number, storageCheck?: number, metricsPort?: number, metricsHost: string }) => {
      const peer = await createPeer({
        metrics: options.metricsPort != null,
        bootstrap: options.bootstrap,
        dataDir: options.data,
        listen: options.listen,
        storageBytes: options.storage,
        ...(options.storageCheck != null ? { storageCheckIntervalMs: options.storageCheck } : {}),
        contribute: { threads: options.slots }
      })
      log.info(`peer ${peer.id} contributing ${options.slots} slot(s)${options.storage > 0 ? ` and ${options.storage} bytes of storage` : ''}`, { peer: peer.id, slots: options.slots, storageBytes: options.storage })
      for (const addr of peer.addresses()) {
        log.info(`listening ${addr}`, { address: addr })
      }
      logServedJobs(peer)
      // node:http is imported only when asked for: it costs an idle worker ~3 MiB (it loads Node's bundled undici)
      const operations = options.metricsPort == null
        ? undefined
        : await (await import('../page-server.ts')).serveOperations({
          port: options.metricsPort,
          host: options.metricsHost,
          health: () => peer.status === 'started' ? { status: 'ok', peerId: peer.id, connections: peer.connections().length, slots: peer.contribution?.threads ?? 0, running: peer.contribution?.running ?? 0 } : undefined,
          metrics: async () => await peer.metrics() ?? ''
        })
      if (operations != null) {
        log.warn(`metrics: ${operations.url}metrics`, { url: `${operations.url}metrics` })
      }
      onShutdown(async () => {
        await operations?.close()
        await stopWithin(peer)
      })
    })
}
