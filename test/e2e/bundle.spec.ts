import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { expect, test } from '@playwright/test'

const dist = new URL('../../build/page/', import.meta.url).pathname
const BUDGET = 250 * 1024

test('the page\'s initial JS fits the 250 KB gzip budget', () => {
  const html = readFileSync(join(dist, 'index.html'), 'utf8')
  // what the browser loads before any lazy import: entry scripts and their modulepreloads
  const initial = [...html.matchAll(/<(?:script[^>]+src|link[^>]+rel="modulepreload"[^>]+href)="([^"]+\.js)"/g)].map(m => m[1] as string)
  expect(initial.length).toBeGreaterThan(0)
  const gzip = initial.reduce((sum, file) => sum + gzipSync(readFileSync(join(dist, file))).byteLength, 0)
  console.log(`initial JS: ${initial.join(', ')} = ${(gzip / 1024).toFixed(1)} KB gzip`)
  expect(gzip).toBeLessThanOrEqual(BUDGET)
})
