import { join } from 'node:path'
import { Command } from 'commander'
import { startBootstrap, wasmeshHome, type BootstrapNode, type TlsFiles } from '../../../node/index.ts'
import { onShutdown } from '../lifecycle.ts'
import { readUserFile, UsageError, whole } from '../options.ts'
import { log } from '../log.ts'

export function bootstrapCommand (): Command {
  return new Command('bootstrap')
    .description('Run a bootstrap + circuit-relay-v2 node. Prints each dialable multiaddr on its own line of stdout.')
    .option('--port <n>', 'TCP port (WebSockets on port + 1); 0 picks free ports', whole, 0)
    .option('--host <ip>', 'interface to listen on', '127.0.0.1')
    .option('--data <dir>', 'state directory (keeps the peer id stable)', join(wasmeshHome(), 'bootstrap'))
    .option('--http-port <n>', 'also serve the web page (and its config.json, and a health check at /healthz) on this port; 0 picks one. The URL goes to stderr', whole)
    .option('--http-host <ip>', 'interface the web page is served on (e.g. 0.0.0.0 for phones on the LAN); default: --host')
    .option('--tls-cert <file>', 'serve WebSockets as wss:// with this certificate (PEM; with --tls-key)')
    .option('--tls-key <file>', 'the private key (PEM) of --tls-cert')
    .option('--metrics', 'also serve Prometheus metrics (libp2p\'s, the process\'s, wasmesh_*) at /metrics on the --http-port')
    .action(async (options: { port: number, host: string, data: string, httpPort?: number, httpHost?: string, metrics?: boolean, tlsCert?: string, tlsKey?: string }) => {
      if (options.metrics === true && options.httpPort == null) {
        throw new UsageError('--metrics needs --http-port: the metrics are served at /metrics on it')
      }
      if ((options.tlsCert == null) !== (options.tlsKey == null)) {
        throw new UsageError('--tls-cert and --tls-key go together')
      }
      const tls = options.tlsCert != null && options.tlsKey != null ? await readTls(options.tlsCert, options.tlsKey) : undefined
      const started: { node?: BootstrapNode } = {}
      // the page server first: when the page is not built, fail before a libp2p node keeps the process alive
      const page = options.httpPort == null
        ? undefined
        : await (await import('../page-server.ts')).servePage({
          port: options.httpPort,
          host: options.httpHost ?? options.host,
          bootstrap: () => started.node?.addresses() ?? [],
          health: () => started.node?.health(),
          ...(options.metrics === true ? { metrics: async () => await started.node?.metrics?.() ?? '' } : {})
        })
      const node = await startBootstrap({ port: options.port, host: options.host, dataDir: options.data, metrics: options.metrics === true, ...(tls != null ? { tls } : {}) })
      started.node = node
      for (const addr of node.addresses()) {
        log.info(addr, { address: addr })
      }
      if (page != null) {
        for (const url of page.urls) {
          log.warn(`web page: ${url}`, { url })
        }
      }
      onShutdown(async () => {
        await page?.close()
        await node.stop()
      })
    })
}

async function readTls (certFile: string, keyFile: string): Promise<TlsFiles> {
  const read = async (file: string, flag: string): Promise<string> => new TextDecoder().decode(await readUserFile(file, flag))
  return { cert: await read(certFile, '--tls-cert'), key: await read(keyFile, '--tls-key') }
}
