/**
 * The gossip curve from a sweep of `npm run sim` runs:
 *
 *   node scripts/sim/curve.ts runs/16.json runs/32.json … runs/1000.json
 *
 * prints a Markdown table of gossip per peer against N, and least-squares
 * fits of bytes per peer per second to a + b·log2 N and to a + b·N, each
 * with its R², so one can see which growth the points follow.
 */
import { readFile } from 'node:fs/promises'
import type { SimResult } from './run.ts'

interface Fit { a: number, b: number, r2: number }

function fit (xs: number[], ys: number[]): Fit {
  const n = xs.length
  const mx = xs.reduce((s, x) => s + x, 0) / n
  const my = ys.reduce((s, y) => s + y, 0) / n
  let sxy = 0
  let sxx = 0
  let syy = 0
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx
    const dy = (ys[i] as number) - my
    sxy += dx * dy
    sxx += dx * dx
    syy += dy * dy
  }
  const b = sxy / sxx
  return { a: my - b * mx, b, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) }
}

const runs = (await Promise.all(process.argv.slice(2).map(async file => JSON.parse(await readFile(file, 'utf8')) as SimResult)))
  .sort((a, b) => a.peers - b.peers)
console.log('| N | wire B/s per peer (idle) | messages/s | adverts/s | advert payload B/s | wire B/s per peer (jobs) | forming B/s per peer | requester knew all workers | new worker seen | utilisation | KiB per peer |')
console.log('|---|---|---|---|---|---|---|---|---|---|---|')
for (const r of runs) {
  console.log(`| ${r.peers} | ${r.gossipBytesPerPeerPerS} | ${r.gossipMessagesPerPeerPerS} | ${r.advertsPerPeerPerS} | ${r.advertPayloadBytesPerPeerPerS} | ${r.gossipBytesPerPeerPerSDuringJobs} | ${r.joinGossipBytesPerPeerPerS ?? '–'} | ${r.meshSeenMs ?? '–'} ms | ${r.discoveryMs ?? '–'} ms | ${r.utilisation} | ${r.memoryPerPeerKiB} |`)
}
const ns = runs.map(r => r.peers)
for (const [name, ys] of [['idle', runs.map(r => r.gossipBytesPerPeerPerS)], ['during jobs', runs.map(r => r.gossipBytesPerPeerPerSDuringJobs)]] as const) {
  const log = fit(ns.map(Math.log2), [...ys])
  const lin = fit(ns, [...ys])
  console.log(`\n${name}: B/s per peer ≈ ${log.a.toFixed(0)} + ${log.b.toFixed(0)}·log2 N (R² ${log.r2.toFixed(3)}); ≈ ${lin.a.toFixed(0)} + ${lin.b.toFixed(2)}·N (R² ${lin.r2.toFixed(3)})`)
}
