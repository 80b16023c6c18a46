/**
 * The Storage card: a visitor stores a file on the mesh's storage peers,
 * sees who holds it (receipts checked in the tab), downloads it back, and
 * the file outlives the tab: a CLI peer fetches the same bytes after the tab
 * closed. And the other way round: a tab lends its own storage, keeps a file
 * a CLI peer stored, and serves it to another.
 */
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { explain } from '../helpers/processes.ts'
import { expect, joined, openTab, test } from './fixtures.ts'

test('a file stored from the page is kept by two storage peers, found, downloaded, and still there after the tab closed', async ({ browser, net }) => {
  const holders = await net.startWorkers(2, { args: ['--storage', '64MiB'] })
  const tab = await openTab(browser, net)
  await joined(tab)
  await tab.waitForFunction(count => (window.wasmesh.peer?.peers() ?? []).filter(p => p.advert.storageBytes > 0).length >= count, holders.length, { timeout: 30_000 })

  const bytes = randomBytes(300 * 1024)
  await tab.setInputFiles('#store-file', { name: 'photo.bin', mimeType: 'application/octet-stream', buffer: bytes })
  await tab.fill('#store-replicas', '2')
  await tab.click('#store-run')
  await expect(tab.locator('#storage-result')).toHaveAttribute('data-state', 'ok', { timeout: 60_000 })
  await expect(tab.locator('#storage-title')).toContainText('kept by 2 peer(s)')
  const stored = await tab.evaluate(() => window.wasmesh.storage)
  expect([...(stored?.holders ?? [])].sort()).toEqual(holders.map(h => h.peerId).sort())
  const cid = stored?.cid as string

  await tab.click('#find-run')
  await expect(tab.locator('#storage-title')).toContainText('Kept by 2 peer(s)', { timeout: 30_000 })
  await expect(tab.locator('#storage-holders li')).toHaveCount(2)

  await tab.click('#get-run')
  await expect(tab.locator('#storage-download')).toBeVisible({ timeout: 30_000 })
  expect(await tab.evaluate(() => window.wasmesh.storage?.downloadedBytes)).toBe(bytes.byteLength)

  // a wrong CID is explained, and the card goes on working
  await tab.fill('#find-cid', 'not-a-cid')
  await tab.click('#find-run')
  await expect(tab.locator('#storage-result')).toHaveAttribute('data-state', 'error')
  expect(await tab.evaluate(() => window.wasmesh.storage?.error)).toBeTruthy()

  await tab.close()
  const out = join(net.home, 'fetched.bin')
  const fetched = await net.run(['get', cid, '--out', out])
  expect(fetched.code, explain(fetched)).toBe(0)
  expect(Buffer.compare(await readFile(out), bytes)).toBe(0)
})

test('a tab that lends its storage keeps a file a CLI peer stored, another CLI peer reads it from the tab, and the offer and the file outlive a reload', async ({ browser, net }) => {
  // no Node peer offers storage: the tab is the only place a copy can go
  const tab = await openTab(browser, net)
  const tabId = await joined(tab)
  const offer = String(64 * 1024 * 1024)
  await tab.selectOption('#offer-size', offer)
  await expect(tab.locator('#offer-status')).toContainText('Lending 64.0 MiB: holding 0 files')

  const bytes = randomBytes(200 * 1024)
  const file = join(net.home, 'lent.bin')
  await writeFile(file, bytes)
  const stored = await net.run(['store', file, '--replicas', '1', '--json'])
  expect(stored.code, explain(stored)).toBe(0)
  const { cid, holders } = JSON.parse(stored.stdout) as { cid: string, holders: string[] }
  expect(holders).toEqual([tabId])
  await expect(tab.locator('#offer-status')).toContainText('holding 1 file for others', { timeout: 30_000 })

  const out = join(net.home, 'from-the-tab.bin')
  const fetched = await net.run(['get', cid, '--out', out])
  expect(fetched.code, explain(fetched)).toBe(0)
  expect(Buffer.compare(await readFile(out), bytes)).toBe(0)

  // the choice is remembered, and what the tab holds is kept in IndexedDB
  await tab.reload()
  await joined(tab)
  await expect(tab.locator('#offer-size')).toHaveValue(offer)
  await expect(tab.locator('#offer-status')).toContainText('Lending 64.0 MiB: holding 1 file for others')
})
