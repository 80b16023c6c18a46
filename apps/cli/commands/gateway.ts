import { Command } from 'commander'
import { createPeer, MAX_FUNCTION_BODY_BYTES } from '../../../node/index.ts'
import { onShutdown, stopWithin } from '../lifecycle.ts'
import { bootstrapOption, reputationDir, whole } from '../options.ts'
import { log } from '../log.ts'

export function gatewayCommand (): Command {
  return new Command('gateway')
    .description('Serve functions over HTTP: http://host:port/fn/<owner>/<name>/<path> calls the function on the mesh; each response carries its worker and signed receipt in headers.')
    .option('--port <n>', 'HTTP port (0 picks one)', whole, 8080)
    .option('--host <addr>', 'interface to listen on', '127.0.0.1')
    .option('--max-body <bytes>', 'largest request body (bigger: 413)', whole, MAX_FUNCTION_BODY_BYTES)
    .addOption(bootstrapOption())
    .action(async (options: { port: number, host: string, maxBody: number, bootstrap?: string[] }) => {
      const peer = await createPeer({ bootstrap: options.bootstrap, reputationDir: reputationDir() })
      // imported here, not at the top: see start.ts
      const { serveGateway } = await import('../gateway.ts')
      const gateway = await serveGateway(peer, { port: options.port, host: options.host, maxBodyBytes: options.maxBody }).catch(async (err: Error) => {
        await stopWithin(peer)
        throw err
      })
      log.info(`gateway ${peer.id} serving functions at ${gateway.urls.map(url => `${url}fn/<owner>/<name>/`).join('  ')}`, { peer: peer.id, urls: gateway.urls.join(' ') })
      onShutdown(async () => {
        await gateway.close()
        await stopWithin(peer)
      })
    })
}
