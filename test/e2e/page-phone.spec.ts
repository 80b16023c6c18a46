/**
 * The page on phones: no sideways scrolling from 360 px up, a page served
 * over plain HTTP (no WebCrypto, as on a LAN address) still joins and runs
 * jobs, and the error banner speaks to visitors.
 */
import { DEVICES, expect, expectNoHorizontalOverflow, joined, knowsWorker, openTab, snapshot, test } from './fixtures.ts'

test('first load fits every width from 360 px up', async ({ browser, net }, testInfo) => {
  for (const device of [{ name: 'narrow', width: 360, height: 740, touch: true }, ...DEVICES]) {
    const tab = await openTab(browser, net, { device })
    await joined(tab)
    await snapshot(tab, testInfo, `first-load-${device.name}`)
    await tab.selectOption('#demo', 'file')
    await tab.check('#mode-batch', { force: true })
    await expectNoHorizontalOverflow(tab)
    await tab.context().close()
  }
})

test('without WebCrypto (plain HTTP on a LAN address) a tab still joins, runs a job and verifies its receipt', async ({ browser, net }) => {
  const worker = await net.startWorker()
  const tab = await openTab(browser, net, {
    device: DEVICES[0],
    // what Chromium does for http://192.168.x.y: no crypto.subtle outside a secure context
    before: async page => { await page.addInitScript(() => { Object.defineProperty(globalThis.crypto, 'subtle', { value: undefined }) }) }
  })
  await joined(tab)
  expect(await tab.evaluate(() => globalThis.crypto.subtle)).toBeUndefined()
  await knowsWorker(tab, worker.peerId)
  await tab.fill('#input', 'no webcrypto here')
  await tab.click('#run')
  await expect(tab.locator('#result')).toHaveAttribute('data-state', 'ok', { timeout: 60_000 })
  await expect(tab.locator('#result-output')).toHaveText('NO WEBCRYPTO HERE')
  await expect(tab.locator('#result-verified')).toHaveAttribute('data-verified', 'true')
})

test('a dead bootstrap node gets a banner written for visitors, details folded away', async ({ browser, net }, testInfo) => {
  const dead = encodeURIComponent('/ip4/127.0.0.1/tcp/9/ws/p2p/12D3KooWH7ETWV6x22ZJjq6zhHu17iiSmw8fggGwf3bc3APbPDdt')
  for (const device of DEVICES) {
    const tab = await openTab(browser, net, { device, query: `?bootstrap=${dead}` })
    await expect(tab.locator('#net-status')).toHaveAttribute('data-state', 'error', { timeout: 30_000 })
    const banner = tab.locator('#banner')
    await expect(banner.locator('.banner-title')).toHaveText('The network could not be reached.')
    await expect(banner.locator('.banner-advice')).toContainText('reload')
    await expect(banner.locator('.banner-details pre')).toBeHidden()
    await expect(banner.locator('.banner-details pre')).toContainText('could not reach any bootstrap node')
    expect(await banner.textContent()).not.toContain('undefined')
    expect(await banner.innerText(), 'developer advice stays in the folded details').not.toContain('npm start')
    await snapshot(tab, testInfo, `error-${device.name}`)
    await tab.context().close()
  }
})
