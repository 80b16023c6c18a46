/**
 * Function figures for scripts/bench/run.ts, on a network of its own (a
 * bootstrap process and two worker processes): the first call after deploy
 * (fetch + compile on the worker) against a warm call's start-up from the
 * worker's own stats; warm calls through the HTTP gateway (p50, p99) against
 * the same WAGI module run in this process and against job_rtt_p50_ms; and
 * the gateway's throughput with two workers. docs/benchmarks.md says what
 * each figure means.
 */
import { readFile } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { availableParallelism } from 'node:os'
import { DEFAULT_LIMITS } from '../../protocol/constants.ts'
import { compileModule } from '../../protocol/runtime/compile.ts'
import { runModule } from '../../protocol/runtime/run.ts'
import { wagiEnv } from '../../protocol/functions/wagi.ts'
import { serveGateway } from '../../apps/cli/gateway.ts'
import { wasmPath } from '../build-wasm.ts'
import { ProcessNetwork } from '../../test/helpers/processes.ts'
import { fromRuns, median, percentile, requester as startRequester, round, stopNetwork, waitForWorkers, withBaseline, type Metric } from './lib.ts'

export interface FunctionsBenchOptions {
  quick: boolean
  log: (message: string) => void
  /** The rtt section's job_rtt_p50_ms, when it ran: the warm gateway call is compared with it. */
  jobRttP50?: number | null
}

export async function functionsBench (options: FunctionsBenchOptions): Promise<Record<string, Metric>> {
  const { quick, log } = options
  const samples = quick ? 300 : 1000
  const runs = quick ? 3 : 5
  const throughputRequests = quick ? 2000 : 10_000
  const results: Record<string, Metric> = {}
  const network = await ProcessNetwork.start({ label: 'bench-functions' })
  try {
    await network.startWorkers(2, { slots: availableParallelism(), listen: ['/ip4/127.0.0.1/tcp/0'] })
    const owner = await startRequester(network)
    await waitForWorkers(owner, network)
    const bytes = new Uint8Array(await readFile(wasmPath('markdown')))

    // first call after deploy: published only, so the worker fetches and compiles
    const { address } = await owner.deploy({ name: 'markdown', module: bytes, replicas: 0 })
    let t = performance.now()
    const first = await owner.call(address)
    const firstMs = performance.now() - t
    const firstStats = first.receipt.receipt.stats
    // the other worker's first call too, so both are warm
    await owner.call(address, {}, { redundancy: 2 })
    for (let i = 0; i < 100; i++) {
      await owner.call(address) // past the checks of untrusted workers (docs/verification.md)
    }
    const startup: number[] = []
    const exec: number[] = []
    for (let i = 0; i < samples; i++) {
      const { stats } = (await owner.call(address)).receipt.receipt
      startup.push(stats.fetchMs + stats.compileMs)
      exec.push(stats.execMs)
    }
    results.function_first_call_ms = fromRuns([firstMs], 'ms', { detail: { workerFetchMs: round(firstStats.fetchMs), workerCompileMs: round(firstStats.compileMs), workerExecMs: round(firstStats.execMs), moduleCached: firstStats.moduleCached } })
    results.function_warm_startup_ms = fromRuns([median(startup)], 'ms', {
      target: '≤ 1 ms of start-up on the worker (fetch + compile, from its receipts)',
      detail: { calls: samples, p99: round(percentile(startup, 99)), workerExecMsP50: round(median(exec)), note: 'instantiation is inside execMs' }
    })
    results.function_warm_startup_ms.met = (results.function_warm_startup_ms.value ?? Infinity) <= 1

    // the same module, run here: what a warm call costs without the network
    const compiled = await compileModule(bytes, 'wasi', DEFAULT_LIMITS)
    const env = wagiEnv({}, `/fn/${address}`)
    const local: number[] = []
    for (let i = 0; i < samples; i++) {
      t = performance.now()
      runModule(compiled, { abi: 'wasi', argv: ['main.wasm'], env, input: new Uint8Array(0), limits: { memoryBytes: DEFAULT_LIMITS.memoryBytes, outputBytes: DEFAULT_LIMITS.outputBytes } })
      local.push(performance.now() - t)
    }
    const inProcess = median(local)

    const gateway = await serveGateway(owner, { port: 0 })
    try {
      const url = new URL(`${gateway.url}fn/${address}/`)
      // a keep-alive node:http client, as curl or a load generator would be: fetch (undici) cost this process more than the gateway did
      const agent = new Agent({ keepAlive: true, maxSockets: 64 })
      const get = async (): Promise<void> => {
        await new Promise<void>((resolve, reject) => {
          const req = request(url, { agent }, res => {
            res.resume()
            res.on('end', () => {
              if (res.statusCode === 200) {
                resolve()
              } else {
                reject(new Error(`the gateway answered ${String(res.statusCode)}`))
              }
            })
          })
          req.on('error', reject)
          req.end()
        })
      }
      for (let i = 0; i < 50; i++) {
        await get()
      }
      const p50: number[] = []
      const p99: number[] = []
      for (let r = 0; r < runs; r++) {
        const times: number[] = []
        for (let i = 0; i < samples; i++) {
          t = performance.now()
          await get()
          times.push(performance.now() - t)
        }
        p50.push(percentile(times, 50))
        p99.push(percentile(times, 99))
      }
      results.gateway_warm_p50_ms = withBaseline(fromRuns(p50, 'ms', { detail: { samplesPerRun: samples, inProcessRunMs: round(inProcess), jobRttP50Ms: options.jobRttP50 ?? null, vsJobRtt: options.jobRttP50 != null ? round(median(p50) / options.jobRttP50) : null } }), inProcess)
      results.gateway_warm_p99_ms = withBaseline(fromRuns(p99, 'ms', { detail: { samplesPerRun: samples } }), inProcess)

      log(`gateway throughput, ${throughputRequests} requests…`)
      const rates: number[] = []
      for (let r = 0; r < (quick ? 2 : 3); r++) {
        let next = 0
        t = performance.now()
        await Promise.all(Array.from({ length: 64 }, async () => {
          while (next++ < throughputRequests) {
            await get()
          }
        }))
        rates.push(throughputRequests / ((performance.now() - t) / 1000))
      }
      results.gateway_requests_per_s = fromRuns(rates, 'req/s', { target: '≥ 2000 with 2 workers', detail: { requests: throughputRequests, inFlight: 64, note: 'client, gateway and both workers share this machine\'s cores' } })
      results.gateway_requests_per_s.met = (results.gateway_requests_per_s.value ?? 0) >= 2000
      agent.destroy()
    } finally {
      await gateway.close()
    }
  } finally {
    await stopNetwork(network)
  }
  return results
}
