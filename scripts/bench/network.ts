/**
 * A local mesh for the bench: a bootstrap node and worker peers as separate
 * OS processes (`node node/cli.ts bootstrap|peer`), and requesters created
 * in the bench process with createPeer.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createPeer } from '../../node/create-peer.ts'
import { cliPath, sleep, spawnNode, type Proc } from './lib.ts'
import type { Peer } from '../../protocol/peer.ts'

export interface WorkerProc {
  proc: Proc
  peerId: string
}

export class BenchNetwork {
  readonly home: string
  readonly env: NodeJS.ProcessEnv
  readonly workers: WorkerProc[] = []
  readonly peers: Peer[] = []
  bootstrap?: Proc
  bootstrapAddr = ''
  /** With `page`: the bootstrap node's WebSocket multiaddr and the URL of the page it serves. */
  wsAddr = ''
  pageUrl = ''

  private constructor (home: string) {
    this.home = home
    this.env = { ...process.env, WASMESH_HOME: home, WASMESH_BOOTSTRAP: '', NODE_NO_WARNINGS: '1' }
  }

  /** `page`: the bootstrap node also serves build/page on a free port (`--http-port 0`), as test/e2e/network.ts does. */
  static async start (label: string, options: { page?: boolean } = {}): Promise<BenchNetwork> {
    const network = new BenchNetwork(await mkdtemp(join(tmpdir(), `wasmesh-bench-${label}-`)))
    const http = options.page === true ? ['--http-port', '0'] : []
    network.bootstrap = spawnNode([cliPath, 'bootstrap', '--port', '0', ...http, '--data', join(network.home, 'bootstrap')], network.env)
    network.bootstrapAddr = await network.bootstrap.waitForLine(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
    if (options.page === true) {
      network.wsAddr = await network.bootstrap.waitForLine(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/ws\/p2p\//)
      network.pageUrl = (await network.bootstrap.waitForLine(/^web page: http:\/\/\S+$/)).slice('web page: '.length)
    }
    return network
  }

  /** Starts worker peer processes (in parallel) and resolves once each contributes. */
  async addWorkers (count: number, slots: number): Promise<WorkerProc[]> {
    return await Promise.all(Array.from({ length: count }, async () => {
      const name = `worker-${this.workers.length}-${Math.random().toString(36).slice(2, 8)}`
      const proc = spawnNode([cliPath, 'peer', '--bootstrap', this.bootstrapAddr, '--data', join(this.home, name), '--slots', String(slots), '--listen', '/ip4/127.0.0.1/tcp/0'], this.env)
      const line = await proc.waitForLine(/^peer \S+ contributing/)
      const worker = { proc, peerId: line.split(' ')[1] as string }
      this.workers.push(worker)
      return worker
    }))
  }

  /** An in-process requester (no contribution, in-memory stores). */
  async requester (): Promise<Peer> {
    const peer = await createPeer({ bootstrap: [this.bootstrapAddr], listen: ['/ip4/127.0.0.1/tcp/0'] })
    this.peers.push(peer)
    return peer
  }

  /** Waits until `peer` has adverts from every worker of this network that is running. */
  async waitForWorkers (peer: Peer, count = this.workers.length, timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs
    while (true) {
      const known = new Set(peer.peers().filter(p => p.advert.slots.total > 0).map(p => p.peerId))
      if (this.workers.filter(w => known.has(w.peerId)).length >= count) {
        return
      }
      if (Date.now() > until) {
        throw new Error(`only ${known.size} of ${count} workers advertised within ${timeoutMs} ms`)
      }
      await sleep(50)
    }
  }

  async stop (): Promise<void> {
    await Promise.all(this.peers.map(async peer => { await peer.stop().catch(() => {}) }))
    await Promise.all(this.workers.map(async w => { await w.proc.kill() }))
    await this.bootstrap?.kill()
    await rm(this.home, { recursive: true, force: true })
  }
}
