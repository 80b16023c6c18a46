/**
 * The Mandelbrot app: renders a view of the Mandelbrot set as tiles, one job
 * per tile (apps/mandelbrot/assembly, direct ABI), and assembles the RGBA
 * image as tiles arrive.
 */
import type { ModuleRef } from '../../protocol/public.ts'
import { malformed, runJobs, type AppRunOptions, type JobDone, type MapPeer } from '../shared.ts'

export const MODULE_FILE = 'mandelbrot.wasm'

export interface MandelbrotOptions {
  /** Image size in pixels. */
  width: number
  height: number
  /** Tile side in pixels: one job per tile. */
  tile: number
  maxIterations: number
  /** The point at the image's centre. */
  centerRe: number
  centerIm: number
  /** The width of the view in the complex plane. */
  span: number
}

export const MANDELBROT_DEFAULTS: MandelbrotOptions = { width: 512, height: 512, tile: 64, maxIterations: 500, centerRe: -0.6, centerIm: 0, span: 3 }

/** The module refuses larger tiles. */
export const MAX_TILE = 4096
const INPUT_BYTES = 36

export interface Tile {
  index: number
  /** Top-left pixel in the image. */
  x: number
  y: number
  width: number
  height: number
}

export interface TileDone extends JobDone {
  tile: Tile
  /** The tile's RGBA pixels, row by row. */
  pixels: Uint8Array
}

/** The image's tiles, row by row; edge tiles are cut to the image. */
export function tiles (options: MandelbrotOptions): Tile[] {
  checkOptions(options)
  const list: Tile[] = []
  for (let y = 0; y < options.height; y += options.tile) {
    for (let x = 0; x < options.width; x += options.tile) {
      list.push({ index: list.length, x, y, width: Math.min(options.tile, options.width - x), height: Math.min(options.tile, options.height - y) })
    }
  }
  return list
}

/** A tile's job input: f64 re0, f64 im0, f64 step, u32 width, u32 height, u32 maxIterations, little-endian. */
export function tileInput (options: MandelbrotOptions, tile: Tile): Uint8Array {
  const step = options.span / options.width
  // Pixel centres; the view is centred on (centerRe, centerIm), imaginary axis up.
  const left = options.centerRe - options.span / 2 + step / 2
  const top = options.centerIm + (options.height * step) / 2 - step / 2
  const input = new Uint8Array(INPUT_BYTES)
  const view = new DataView(input.buffer)
  view.setFloat64(0, left + tile.x * step, true)
  view.setFloat64(8, top - tile.y * step, true)
  view.setFloat64(16, step, true)
  view.setUint32(24, tile.width, true)
  view.setUint32(28, tile.height, true)
  view.setUint32(32, options.maxIterations, true)
  return input
}

/** Copies a tile's pixels into the full RGBA image. */
export function blit (image: Uint8Array, imageWidth: number, tile: Tile, pixels: Uint8Array): void {
  for (let row = 0; row < tile.height; row++) {
    const from = row * tile.width * 4
    image.set(pixels.subarray(from, from + tile.width * 4), ((tile.y + row) * imageWidth + tile.x) * 4)
  }
}

export interface MandelbrotResult {
  /** The whole image, RGBA, row by row. */
  image: Uint8Array
  width: number
  height: number
  /** Tiles computed per worker peer id. */
  workers: Map<string, number>
}

/**
 * Renders the image on the network; `onTile` sees each tile as it arrives,
 * in completion order.
 */
export async function renderMandelbrot (peer: MapPeer, module: ModuleRef, options: MandelbrotOptions, run: AppRunOptions = {}, onTile?: (tile: TileDone) => void): Promise<MandelbrotResult> {
  const list = tiles(options)
  const image = new Uint8Array(options.width * options.height * 4)
  const workers = new Map<string, number>()
  await runJobs(peer, module, list.map(tile => tileInput(options, tile)), 'direct', run, (pixels, job) => {
    const tile = list[job.index] as Tile
    if (pixels.length !== tile.width * tile.height * 4) {
      throw malformed('mandelbrot', job.index, `${pixels.length} bytes for a ${tile.width}×${tile.height} tile`)
    }
    blit(image, options.width, tile, pixels)
    workers.set(job.worker, (workers.get(job.worker) ?? 0) + 1)
    onTile?.({ ...job, tile, pixels })
  })
  return { image, width: options.width, height: options.height, workers }
}

function checkOptions (options: MandelbrotOptions): void {
  for (const key of ['width', 'height', 'tile', 'maxIterations'] as const) {
    if (!Number.isInteger(options[key]) || options[key] < 1) {
      throw new RangeError(`mandelbrot: ${key} must be a positive integer, got ${options[key]}`)
    }
  }
  if (options.tile > MAX_TILE) {
    throw new RangeError(`mandelbrot: tile must be at most ${MAX_TILE} pixels`)
  }
  if (!(options.span > 0) || !Number.isFinite(options.centerRe) || !Number.isFinite(options.centerIm)) {
    throw new RangeError('mandelbrot: span must be positive and the centre finite')
  }
}
