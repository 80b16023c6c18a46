#!/usr/bin/env node
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { text } from 'node:stream/consumers'
import { Presets, SingleBar } from 'cli-progress'
import { Command, InvalidArgumentError, Option } from 'commander'
import { CID } from 'multiformats/cid'
import { fromString, toString } from 'uint8arrays'
import { decodeSignedReceipt, encodeSignedReceipt, verifyReceipt, type Receipt, type SignedReceipt } from '../protocol/receipt.ts'
import { SOFTWARE_VERSION } from '../protocol/constants.ts'
import { WasmeshError } from '../protocol/errors.ts'
import { appCommand } from './apps.ts'
import { startBootstrap, type BootstrapNode } from './bootstrap.ts'
import { createPeer } from './create-peer.ts'
import { stopWithin } from './stop.ts'
import { localNetworkFile, wasmeshHome } from './home.ts'
import { servePage } from './http-server.ts'
import type { Peer, RunOptions, RunResult } from '../protocol/peer.ts'

/** Exit codes: 0 verified success, 1 the job failed, 2 bad usage or input, 3 the network could not run it. */
const EXIT_JOB_FAILED = 1
const EXIT_USAGE = 2
const EXIT_NETWORK = 3

const program = new Command('wasmesh')
  .description('Run content-addressed Wasm jobs on a peer-to-peer network of browsers and Node peers, with signed receipts.')
  .version(SOFTWARE_VERSION)
  .showHelpAfterError()

const bootstrapOption = (): Option => new Option('-b, --bootstrap <multiaddr...>', 'bootstrap node(s) to join through; default: $WASMESH_BOOTSTRAP, else the local network `npm start` runs')

program.command('start')
  .description('Run the local network: a bootstrap/relay node and one worker peer on loopback.')
  .option('--port <n>', 'bootstrap TCP port (WebSockets on port + 1)', integer, 4301)
  .option('--slots <n>', 'jobs the worker runs at once', integer, 2)
  .option('--data <dir>', 'state directory', join(wasmeshHome(), 'local'))
  .option('--http-port <n>', 'serve the web page on this port (0 picks one)', integer, 4300)
  .action(async (options: { port: number, slots: number, data: string, httpPort: number }) => {
    const started: { node?: BootstrapNode } = {}
    const page = await servePage({ port: options.httpPort, bootstrap: () => started.node?.addresses() ?? [] }).catch((err: Error) => {
      console.warn(`not serving the web page: ${err.message}`)
      return undefined
    })
    const node = await startBootstrap({ port: options.port, dataDir: join(options.data, 'bootstrap') })
    started.node = node
    const addresses = node.addresses()
    const peer = await createPeer({ bootstrap: addresses, dataDir: join(options.data, 'peer'), contribute: { threads: options.slots } })
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
      console.log(`\nweb page: ${page.url}  (open it, switch on Contribute, run a job)`)
    }
    console.log('\nTry, in another terminal:')
    console.log('  npx wasmesh status')
    console.log('  echo hello | npx wasmesh run build/wasm/echo.wasm --input -')
    console.log('\nPress Ctrl-C to stop.')
    onShutdown(async () => {
      await page?.close()
      await stopWithin(peer)
      await node.stop()
      await rm(localNetworkFile(), { force: true })
    })
  })

program.command('bootstrap')
  .description('Run a bootstrap + circuit-relay-v2 node. Prints each dialable multiaddr on its own line of stdout.')
  .option('--port <n>', 'TCP port (WebSockets on port + 1); 0 picks free ports', integer, 0)
  .option('--host <ip>', 'interface to listen on', '127.0.0.1')
  .option('--data <dir>', 'state directory (keeps the peer id stable)', join(wasmeshHome(), 'bootstrap'))
  .option('--http-port <n>', 'also serve the web page (and its config.json) on this port; 0 picks one. The URL goes to stderr', integer)
  .action(async (options: { port: number, host: string, data: string, httpPort?: number }) => {
    const started: { node?: BootstrapNode } = {}
    // the page server first: when the page is not built, fail before a libp2p node keeps the process alive
    const page = options.httpPort == null ? undefined : await servePage({ port: options.httpPort, host: options.host, bootstrap: () => started.node?.addresses() ?? [] })
    const node = await startBootstrap({ port: options.port, host: options.host, dataDir: options.data })
    started.node = node
    for (const addr of node.addresses()) {
      console.log(addr)
    }
    if (page != null) {
      console.error(`web page: ${page.url}`)
    }
    onShutdown(async () => {
      await page?.close()
      await node.stop()
    })
  })

program.command('peer')
  .description('Run a headless worker peer: joins the mesh, advertises capacity, runs jobs sandboxed, returns signed receipts.')
  .addOption(bootstrapOption())
  .option('--data <dir>', 'state directory: identity key, blockstore, datastore', join(wasmeshHome(), 'peer'))
  .option('--slots <n>', 'jobs to run at once', integer, 1)
  .option('--listen <multiaddr...>', 'addresses to listen on', ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'])
  .action(async (options: { bootstrap?: string[], data: string, slots: number, listen: string[] }) => {
    const peer = await createPeer({ bootstrap: options.bootstrap, dataDir: options.data, listen: options.listen, contribute: { threads: options.slots } })
    console.log(`peer ${peer.id} contributing ${options.slots} slot(s)`)
    for (const addr of peer.addresses()) {
      console.log(`listening ${addr}`)
    }
    logServedJobs(peer)
    onShutdown(async () => { await stopWithin(peer) })
  })

program.command('run')
  .description('Run a Wasm module as a job on the network, verify the receipt, and write the job\'s stdout to stdout. With --inputs, run one job per file of a folder.')
  .argument('<module>', 'a .wasm file, a module CID, or an http(s) URL')
  .option('-i, --input <file|->', 'the job\'s stdin: a file, or - for this process\'s stdin')
  .option('--inputs <dir>', 'batch: one job per file in this folder (needs --out)')
  .option('--out <dir>', 'batch: write each output under its input\'s name; rerun with the same --out to resume')
  .option('--concurrency <n>', 'batch: jobs in flight at once', integer, 64)
  .option('--arg <value...>', 'arguments passed to the module (argv[1…])', [])
  .option('--env <KEY=VALUE...>', 'environment variables for the module', [])
  .addOption(new Option('--abi <abi>', 'calling convention').choices(['wasi', 'direct']).default('wasi'))
  .addOption(bootstrapOption())
  .option('--timeout <ms>', 'wall-time limit of the job', integer, 30_000)
  .option('--memory <MiB>', 'Wasm memory limit', integer, 256)
  .option('--max-output <bytes>', 'output size limit', integer, 16 * 1024 * 1024)
  .option('--redundancy <k>', 'run on k distinct workers and accept the output a majority agrees on', integer, 1)
  .option('--json', 'print one JSON object (output, receipt, timings) instead of raw output')
  .action(async (modulePath: string, options: RunCommandOptions) => {
    const module = /^(https?:|bafy|bafk|Qm)/.test(modulePath) ? modulePath : await readFile(modulePath)
    const jobOptions = {
      abi: options.abi,
      args: options.arg,
      env: parseEnv(options.env),
      limits: { timeoutMs: options.timeout, memoryBytes: options.memory * 1024 * 1024, outputBytes: options.maxOutput },
      redundancy: options.redundancy
    }
    if (options.inputs != null || options.out != null) {
      if (options.inputs == null || options.out == null) {
        throw new UsageError('a batch needs both --inputs <dir> and --out <dir>')
      }
      await runBatch(module, options.inputs, options.out, options, jobOptions)
      return
    }
    const input = options.input == null ? undefined : options.input === '-' ? fromString(await text(process.stdin)) : await readFile(options.input)
    const peer = await createPeer({ bootstrap: options.bootstrap })
    try {
      const result = await peer.run({ module, input, ...jobOptions })
      if (options.json === true) {
        console.log(JSON.stringify(resultJson(result)))
      } else {
        process.stdout.write(result.output)
        console.error(`job ${result.job.toString()} ran on ${result.worker} in ${result.durationMs.toFixed(1)} ms (exec ${result.receipt.stats.execMs.toFixed(1)} ms${result.receipt.stats.moduleCached ? ', module cached' : ''}); receipt verified`)
      }
    } catch (err) {
      const receipt = (err as WasmeshError).receipt
      if (options.json === true) {
        console.log(JSON.stringify({ ok: false, error: { name: (err as Error).name, message: (err as Error).message }, ...(receipt != null ? { receipt: receiptJson(receipt) } : {}) }))
      } else {
        if ((err as WasmeshError).output != null) {
          process.stdout.write((err as WasmeshError).output as Uint8Array)
        }
        console.error(`${(err as Error).name}: ${(err as Error).message}${receipt != null ? ` (signed by ${receipt.worker} for job ${receipt.job.toString()})` : ''}`)
      }
      process.exitCode = receipt != null ? EXIT_JOB_FAILED : EXIT_NETWORK
    } finally {
      await stopWithin(peer)
    }
  })

/**
 * One job per input file; outputs go under the same names in `outDir`. The
 * requester's state (identity, accepted results with their receipts) lives in
 * `outDir/.wasmesh`, so rerunning with the same --out takes finished jobs
 * from there and runs only the rest.
 */
async function runBatch (module: Uint8Array | string, inputsDir: string, outDir: string, options: RunCommandOptions, jobOptions: Omit<RunOptions, 'module' | 'input'>): Promise<void> {
  const names = (await readdir(inputsDir, { withFileTypes: true })).filter(entry => entry.isFile()).map(entry => entry.name).sort()
  const stateDir = join(outDir, '.wasmesh')
  await mkdir(join(stateDir, 'receipts'), { recursive: true })
  await mkdir(join(stateDir, 'tmp'), { recursive: true })
  const peer = await createPeer({ bootstrap: options.bootstrap, dataDir: stateDir })
  const bar = new SingleBar({ format: 'jobs {bar} {value}/{total} | {resumed} resumed, {failed} failed | {eta_formatted} left', stream: process.stderr, noTTYOutput: true, notTTYSchedule: 5000 }, Presets.shades_classic)
  const counts = { done: 0, resumed: 0, failed: 0 }
  const failures: Array<{ input: string, error: { name: string, message: string } }> = []
  bar.start(names.length, 0, { resumed: 0, failed: 0 })
  const controller = new AbortController()
  const interrupt = (): void => { controller.abort(new Error('interrupted')) }
  process.once('SIGINT', interrupt)
  try {
    const inputs = (async function * () {
      for (const name of names) {
        yield await readFile(join(inputsDir, name))
      }
    })()
    for await (const r of peer.map(module, inputs, { ...jobOptions, concurrency: options.concurrency, resume: true, signal: controller.signal })) {
      const name = names[r.index] as string
      if (r.ok) {
        await writeAtomically(join(outDir, name), r.result.output, stateDir)
        await writeAtomically(join(stateDir, 'receipts', `${name}.json`), JSON.stringify(resultJson(r.result)), stateDir)
        counts.done++
        counts.resumed += r.result.resumed ? 1 : 0
      } else {
        counts.failed++
        failures.push({ input: name, error: { name: r.error.name, message: r.error.message } })
      }
      bar.increment({ resumed: counts.resumed, failed: counts.failed })
    }
  } finally {
    bar.stop()
    process.off('SIGINT', interrupt)
    await stopWithin(peer)
  }
  const workers = peer.workers().map(({ peerId, record, score }) => ({ peerId, score, ...record }))
  if (options.json === true) {
    console.log(JSON.stringify({ ok: counts.failed === 0, total: names.length, ...counts, failures, workers }))
  } else {
    for (const worker of workers.filter(w => w.banned != null)) {
      console.error(`banned ${worker.peerId}: ${worker.banned?.reason ?? ''} (signed evidence kept in ${stateDir})`)
    }
    console.error(`${counts.done} of ${names.length} jobs done (${counts.resumed} from an earlier run), ${counts.failed} failed; outputs in ${outDir}`)
    for (const failure of failures) {
      console.error(`  ${failure.input}: ${failure.error.name}: ${failure.error.message}`)
    }
  }
  if (counts.failed > 0) {
    process.exitCode = EXIT_JOB_FAILED
  }
}

program.command('status')
  .description('List the peers advertising capacity, and what they offer.')
  .addOption(bootstrapOption())
  .option('--wait <ms>', 'how long to listen for adverts', integer, 3000)
  .option('--json', 'print JSON')
  .action(async (options: { bootstrap?: string[], wait: number, json?: boolean }) => {
    const peer = await createPeer({ bootstrap: options.bootstrap })
    try {
      await new Promise(resolve => setTimeout(resolve, options.wait))
      const peers = peer.peers().map(({ peerId, advert, seenAt }) => ({
        peerId,
        platform: advert.platform,
        slots: advert.slots,
        memoryMiB: Math.floor(advert.memoryBytes / 1024 / 1024),
        storageBytes: advert.storageBytes,
        abis: advert.abis,
        cached: advert.cached.map(cid => cid.toString()),
        version: advert.version,
        ageMs: Date.now() - seenAt
      }))
      if (options.json === true) {
        console.log(JSON.stringify({ peers }))
        return
      }
      console.log(`${peers.length} peer(s) advertising capacity`)
      for (const p of peers) {
        console.log(`${p.peerId}  ${p.platform}  slots ${p.slots.free}/${p.slots.total} free  mem ${p.memoryMiB} MiB  abis ${p.abis.join(',')}  cached ${p.cached.length} module(s)  v${p.version}`)
      }
    } finally {
      await stopWithin(peer)
    }
  })

program.command('verify')
  .description('Verify a receipt printed by `wasmesh run --json`, from its signature and the worker\'s peer id alone.')
  .argument('<file|->', 'JSON with a `receipt` field, as `run --json` prints')
  .option('--job <cid>', 'also require the receipt to be for this job (refuses a valid receipt replayed for another job)')
  .action(async (file: string, options: { job?: string }) => {
    const json = JSON.parse(file === '-' ? await text(process.stdin) : await readFile(file, 'utf8')) as { receipt?: { signed?: string } }
    if (typeof json.receipt?.signed !== 'string') {
      throw new UsageError('the file has no receipt.signed field: pass the JSON that `wasmesh run --json` printed')
    }
    const { receipt } = await verifyReceipt(decodeSignedReceipt(fromString(json.receipt.signed, 'base64')), options.job != null ? { job: CID.parse(options.job) } : {})
    console.log(`valid receipt: job ${receipt.job.toString()} run by ${receipt.worker}, exit ${receipt.exitCode}${receipt.error != null ? ` (${receipt.error.name})` : ''}`)
  })

program.addCommand(appCommand(bootstrapOption))

/**
 * Writes a file whole or not at all: into the state dir first, then renamed
 * into place, so a requester killed mid-batch never leaves a truncated
 * output or receipt behind.
 */
async function writeAtomically (path: string, data: Uint8Array | string, stateDir: string): Promise<void> {
  const temporary = join(stateDir, 'tmp', `${process.pid}-${basename(path)}`)
  await writeFile(temporary, data)
  await rename(temporary, path)
}

interface RunCommandOptions {
  input?: string
  inputs?: string
  out?: string
  concurrency: number
  arg: string[]
  env: string[]
  abi: 'wasi' | 'direct'
  bootstrap?: string[]
  timeout: number
  memory: number
  maxOutput: number
  redundancy: number
  json?: boolean
}

class UsageError extends Error {
  override name = 'UsageError'
}

function integer (value: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new InvalidArgumentError('expected a whole number')
  }
  return n
}

function parseEnv (pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) {
      throw new UsageError(`--env ${pair}: expected KEY=VALUE`)
    }
    env[pair.slice(0, eq)] = pair.slice(eq + 1)
  }
  return env
}

function receiptJson (receipt: Receipt, signed?: SignedReceipt): Record<string, unknown> {
  return {
    job: receipt.job.toString(),
    worker: receipt.worker,
    exitCode: receipt.exitCode,
    ...(receipt.error != null ? { error: receipt.error } : {}),
    outputHash: toString(receipt.outputHash, 'base16'),
    outputSize: receipt.outputSize,
    stats: receipt.stats,
    timestamp: receipt.timestamp,
    ...(signed != null ? { signed: toString(encodeSignedReceipt(signed), 'base64') } : {})
  }
}

function resultJson (result: RunResult): Record<string, unknown> {
  const first = result.receipts[0]
  return {
    ok: true,
    job: result.job.toString(),
    worker: result.worker,
    durationMs: result.durationMs,
    output: toString(result.output),
    outputBase64: toString(result.output, 'base64'),
    receipt: receiptJson(result.receipt, first?.signed),
    receipts: result.receipts.length
  }
}

/** One line per job served: every line is a synchronous write, which costs more than a tiny job. */
function logServedJobs (peer: Peer): void {
  peer.addEventListener('work:start', event => { console.log(`job started ${event.detail.job} from ${event.detail.requester}`) })
}

/**
 * For the long-running commands: a stray rejection inside a library (a peer
 * that vanished mid-handshake, say) is logged, not fatal. A bootstrap node or
 * worker going down for it would cost every peer that depends on it.
 */
function keepRunning (): void {
  process.on('unhandledRejection', reason => {
    console.error(`warning: unhandled rejection, still running: ${reason instanceof Error ? reason.stack ?? reason.message : String(reason)}`)
  })
}

function onShutdown (stop: () => Promise<void>): void {
  keepRunning()
  let stopping = false
  const handler = (): void => {
    if (stopping) {
      process.exit(130)
    }
    stopping = true
    stop().then(() => process.exit(0), (err: Error) => {
      console.error(`error while stopping: ${err.message}`)
      process.exit(1)
    })
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
}

program.parseAsync().catch((err: Error) => {
  console.error(`${err.name === 'Error' ? 'error' : err.name}: ${err.message}`)
  process.exitCode = err instanceof UsageError || err.name === 'MalformedMessageError' || err.name === 'InvalidReceiptError' || err.name === 'InvalidModuleError'
    ? EXIT_USAGE
    : err instanceof WasmeshError ? EXIT_NETWORK : EXIT_USAGE
})
