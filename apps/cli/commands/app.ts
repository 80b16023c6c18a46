/**
 * `wasmesh app <name>`: runs the example apps (apps/) from the command line.
 * The drivers split and assemble; this file parses options, shows progress on
 * stderr and writes the answer (a PNG for the fractal).
 */
import { createHash } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32, deflateSync } from 'node:zlib'
import { Presets, SingleBar } from 'cli-progress'
import { Command } from 'commander'
import { hashsearch, mandelbrot, montecarlo } from '../../index.ts'
import { createPeer, type Peer } from '../../../node/index.ts'
import { finishCommand } from '../lifecycle.ts'
import { bootstrapOption, finite, pair, positive, readUserFile, reputationDir, whole } from '../options.ts'
import { WASM_DIR } from '../package-files.ts'
import type { AppRunOptions, JobDone } from '../../shared.ts'

interface CommonOptions {
  bootstrap?: string[]
  module?: string
  redundancy: number
  concurrency: number
  timeout: number
  json?: boolean
}

/** The `app` command and its three subcommands. */
export function appCommand (): Command {
  const app = new Command('app').description('Run an example app (apps/): split into many jobs on the network, results assembled as they arrive.')
  const common = (command: Command, file: string): Command => command
    .addOption(bootstrapOption())
    .option('--module <file>', `the app's module (default: the ${file} shipped with wasmesh)`)
    .option('--redundancy <k>', 'run every job on k distinct workers and accept the output a majority agrees on', positive, 1)
    .option('--concurrency <n>', 'jobs in flight at once', positive, 64)
    .option('--timeout <ms>', 'wall-time limit of each job', positive, 60_000)
    .option('--json', 'print one JSON object instead of text')

  common(app.command('mandelbrot'), mandelbrot.MODULE_FILE)
    .description('Render the Mandelbrot set, one job per tile, into a PNG.')
    .option('--width <px>', 'image width', positive, mandelbrot.MANDELBROT_DEFAULTS.width)
    .option('--height <px>', 'image height', positive, mandelbrot.MANDELBROT_DEFAULTS.height)
    .option('--tile <px>', 'tile side: one job per tile', positive, mandelbrot.MANDELBROT_DEFAULTS.tile)
    .option('--iterations <n>', 'maximum iterations per pixel', positive, mandelbrot.MANDELBROT_DEFAULTS.maxIterations)
    .option('--center <re,im>', 'the point at the centre of the image', pair, [mandelbrot.MANDELBROT_DEFAULTS.centerRe, mandelbrot.MANDELBROT_DEFAULTS.centerIm])
    .option('--span <width>', 'width of the view in the complex plane', finite, mandelbrot.MANDELBROT_DEFAULTS.span)
    .requiredOption('--out <file.png>', 'where to write the image')
    .action(async (options: CommonOptions & { width: number, height: number, tile: number, iterations: number, center: [number, number], span: number, out: string }) => {
      const render = { width: options.width, height: options.height, tile: options.tile, maxIterations: options.iterations, centerRe: options.center[0], centerIm: options.center[1], span: options.span }
      const total = mandelbrot.tiles(render).length
      await withPeer(options, mandelbrot.MODULE_FILE, total, 'tiles', async (peer, module, run, progress) => {
        const result = await mandelbrot.renderMandelbrot(peer, module, render, run, progress)
        await writeFile(options.out, encodePng(result.image, result.width, result.height))
        const workers = Object.fromEntries(result.workers)
        if (options.json === true) {
          console.log(JSON.stringify({ ok: true, out: options.out, width: result.width, height: result.height, tiles: total, imageSha256: createHash('sha256').update(result.image).digest('hex'), workers }))
        } else {
          console.log(`wrote ${options.out} (${result.width}×${result.height}, ${total} tiles)`)
          printWorkers(result.workers, 'tiles')
        }
      })
    })

  common(app.command('hashsearch'), hashsearch.MODULE_FILE)
    .description('Proof of work: find the nonces whose SHA-256(prefix || nonce) has N leading zero bits, one job per chunk of the range.')
    .option('--prefix <text>', 'the message prefix (UTF-8, at most 64 bytes)', hashsearch.HASHSEARCH_DEFAULTS.prefix)
    .option('--bits <n>', 'leading zero bits required', whole, hashsearch.HASHSEARCH_DEFAULTS.bits)
    .option('--start <nonce>', 'first nonce', whole, hashsearch.HASHSEARCH_DEFAULTS.start)
    .option('--count <n>', 'nonces to try', positive, hashsearch.HASHSEARCH_DEFAULTS.count)
    .option('--chunk <n>', 'nonces per job', positive, hashsearch.HASHSEARCH_DEFAULTS.chunk)
    .action(async (options: CommonOptions & hashsearch.HashSearchOptions) => {
      const search = { prefix: options.prefix, bits: options.bits, start: options.start, count: options.count, chunk: options.chunk }
      await withPeer(options, hashsearch.MODULE_FILE, hashsearch.chunks(search).length, 'chunks', async (peer, module, run, progress) => {
        const result = await hashsearch.searchHashes(peer, module, search, run, progress)
        if (options.json === true) {
          console.log(JSON.stringify({ ok: true, ...search, searched: result.searched, matches: result.matches, workers: Object.fromEntries(result.workers) }))
        } else {
          console.log(`${result.matches.length} nonce(s) in [${search.start}, ${search.start + search.count}) give SHA-256("${search.prefix}" || nonce) ${search.bits} leading zero bits (each checked again here):`)
          for (const match of result.matches) {
            console.log(`  ${match.nonce}  ${match.hash}`)
          }
          printWorkers(result.workers, 'chunks')
        }
      })
    })

  common(app.command('montecarlo'), montecarlo.MODULE_FILE)
    .description('Estimate pi from random points, one job per batch; the seed makes it reproducible.')
    .option('--seed <n>', 'the run\'s seed: each job derives its own from it', whole, montecarlo.MONTECARLO_DEFAULTS.seed)
    .option('--samples <n>', 'points in all', positive, montecarlo.MONTECARLO_DEFAULTS.samples)
    .option('--per-job <n>', 'points per job', positive, montecarlo.MONTECARLO_DEFAULTS.perJob)
    .action(async (options: CommonOptions & montecarlo.MonteCarloOptions) => {
      const estimate = { seed: options.seed, samples: options.samples, perJob: options.perJob }
      await withPeer(options, montecarlo.MODULE_FILE, montecarlo.batches(estimate).length, 'batches', async (peer, module, run, progress) => {
        const result = await montecarlo.estimatePi(peer, module, estimate, run, progress)
        if (options.json === true) {
          console.log(JSON.stringify({ ok: true, ...estimate, estimate: result.estimate, inside: result.inside, standardError: result.standardError, workers: Object.fromEntries(result.workers) }))
        } else {
          console.log(`pi ≈ ${result.estimate} ± ${result.standardError.toPrecision(2)} (${result.inside} of ${result.samples} points inside; off by ${Math.abs(result.estimate - Math.PI).toPrecision(2)})`)
          printWorkers(result.workers, 'batches')
        }
      })
    })
  return app
}

/** Joins the network, runs `body` with a progress bar on stderr, and always stops the peer. */
async function withPeer (options: CommonOptions, file: string, total: number, unit: string, body: (peer: Peer, module: Uint8Array, run: AppRunOptions, progress: (job: JobDone) => void) => Promise<void>): Promise<void> {
  const path = options.module ?? join(WASM_DIR, file)
  const module = await readUserFile(path, 'the module', options.module == null ? 'run `npm run build:wasm` first' : undefined)
  const controller = new AbortController()
  const interrupt = (): void => { controller.abort(new Error('interrupted')) }
  process.once('SIGINT', interrupt)
  const peer = await createPeer({ bootstrap: options.bootstrap, reputationDir: reputationDir() })
  const bar = new SingleBar({ format: `${unit} {bar} {value}/{total} | {workers} worker(s) | {eta_formatted} left`, stream: process.stderr, noTTYOutput: true, notTTYSchedule: 5000 }, Presets.shades_classic)
  const seen = new Set<string>()
  bar.start(total, 0, { workers: 0 })
  try {
    const run: AppRunOptions = { map: { redundancy: options.redundancy, concurrency: options.concurrency, limits: { timeoutMs: options.timeout } }, signal: controller.signal }
    await body(peer, module, run, job => {
      seen.add(job.worker)
      bar.update(job.done, { workers: seen.size })
    })
  } finally {
    bar.stop()
    process.off('SIGINT', interrupt)
    await finishCommand(peer)
  }
}

function printWorkers (workers: Map<string, number>, unit: string): void {
  for (const [worker, count] of [...workers].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${count} ${unit} from ${worker}`)
  }
}

/** A minimal PNG: 8-bit RGBA, one IDAT, no filtering (filter byte 0 per row). */
export function encodePng (rgba: Uint8Array, width: number, height: number): Uint8Array {
  const raw = new Uint8Array(height * (width * 4 + 1))
  for (let y = 0; y < height; y++) {
    raw.set(rgba.subarray(y * width * 4, (y + 1) * width * 4), y * (width * 4 + 1) + 1)
  }
  const header = new Uint8Array(13)
  const view = new DataView(header.buffer)
  view.setUint32(0, width)
  view.setUint32(4, height)
  header.set([8, 6, 0, 0, 0], 8) // bit depth 8, colour type RGBA, deflate, no filter method, no interlace
  const chunks = [chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]
  const png = new Uint8Array(8 + chunks.reduce((sum, c) => sum + c.length, 0))
  png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  let offset = 8
  for (const c of chunks) {
    png.set(c, offset)
    offset += c.length
  }
  return png
}

function chunk (type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, data.length)
  out.set(new TextEncoder().encode(type), 4)
  out.set(data, 8)
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)))
  return out
}
