import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createPeer } from '../node/create-peer.ts'
import { InvalidManifestError, decodeSignedReceipt, receiptHeaderBytes, verifyReceipt, type Peer } from '../node/index.ts'
import { signManifest } from '../protocol/wire/function.ts'
import { buildWasm, wasmPath } from '../scripts/build-wasm.ts'
import { explain, ProcessNetwork, type NodeProcess, type TestWorker } from './helpers/processes.ts'

/**
 * Functions end to end across processes: a bootstrap node and two workers,
 * each a CLI process; the owner deploys with a one-shot `wasmesh deploy`
 * (so it is offline afterwards), a `wasmesh gateway` process serves HTTP,
 * and a peer in this process calls through the SDK. The tests run in order.
 */
describe('functions across processes', () => {
  let network: ProcessNetwork
  let workers: TestWorker[]
  let gateway: NodeProcess
  let gatewayUrl: string
  let caller: Peer
  let address: string
  let version: number

  before(async () => {
    await buildWasm()
    network = await ProcessNetwork.start({ label: 'functions' })
    // storage peers too: deploy pins the module on them (peer.store), beside warming the workers
    workers = await network.startWorkers(2, { args: ['--storage', '64MiB'] })
  })

  after(async () => {
    await caller?.stop()
    await network?.stop()
  })

  it('deploys a WAGI function and returns once workers hold it warm and storage peers pinned it; the owner is then offline', async () => {
    const result = await network.run(['deploy', wasmPath('markdown'), '--name', 'markdown', '--replicas', '2', '--json'])
    assert.equal(result.code, 0, explain(result))
    const json = JSON.parse(result.stdout)
    address = json.address
    version = json.version
    assert.match(address, /^12D3Koo\w+\/markdown$/)
    assert.equal(json.abi, 'wagi')
    assert.equal(json.holders.length, 2)
    assert.ok(json.reached >= 1, 'a neighbour confirmed it holds the manifest')
    assert.ok(json.holders.every((holder: string) => workers.some(w => w.peerId === holder)), `held by ${json.holders}`)
    assert.deepEqual([...json.stored].sort(), workers.map(w => w.peerId).sort(), 'both storage peers pinned the module')
  })

  it('serves the function over HTTP on a gateway, with a verifiable receipt header', async () => {
    gateway = network.spawn(['gateway', '--port', '0', '--max-body', '4096', '--bootstrap', network.bootstrapAddr])
    const line = await gateway.waitForLine(/^gateway \S+ serving functions at http:\/\/\S+/, 60_000)
    gatewayUrl = (line.match(/(http:\/\/127\.0\.0\.1:\d+\/)/) as RegExpMatchArray)[1] as string
    const response = await fetch(`${gatewayUrl}fn/${address}/docs?page`, { method: 'POST', body: '# Title\n\nSome **bold** text.', headers: { 'content-type': 'text/markdown' } })
    const body = await response.text()
    assert.equal(response.status, 200, body)
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/)
    assert.match(body, /<!doctype html>/)
    assert.match(body, /<h1>Title<\/h1>\s*<p>Some <strong>bold<\/strong> text.<\/p>/)
    const worker = response.headers.get('x-wasmesh-worker') ?? ''
    assert.ok(workers.some(w => w.peerId === worker), `served by ${worker}`)
    const signed = decodeSignedReceipt(receiptHeaderBytes(response.headers.get('x-wasmesh-receipt') ?? ''))
    const { receipt } = await verifyReceipt(signed, { worker })
    assert.equal(receipt.job.toString(), response.headers.get('x-wasmesh-job'))
    assert.equal(receipt.exitCode, 0)
    assert.equal(Number(response.headers.get('x-wasmesh-function-version')), version)
  })

  it('calls the function from another peer through the SDK, warm', async () => {
    caller = await createPeer({ bootstrap: [network.bootstrapAddr] })
    const result = await caller.call(address, { method: 'GET', path: '/' })
    assert.equal(result.status, 200)
    assert.match(new TextDecoder().decode(result.body), /<h1>Hello from the mesh<\/h1>/)
    assert.ok(workers.some(w => w.peerId === result.worker))
    // deploy ran it on both workers: whichever took the call had it compiled
    assert.equal(result.receipt.receipt.stats.moduleCached, true)
    assert.equal(result.receipt.receipt.stats.fetchMs, 0)
  })

  it('answers bad input with clear HTTP errors and stays up', async () => {
    const [owner] = address.split('/')
    const missing = await fetch(`${gatewayUrl}fn/${owner}/nothing-here/`)
    assert.equal(missing.status, 404, await missing.text())
    const malformed = await fetch(`${gatewayUrl}fn/${owner}/markdown/%E0%A4%A`)
    assert.equal(malformed.status, 400)
    await malformed.arrayBuffer()
    const big = await fetch(`${gatewayUrl}fn/${address}/`, { method: 'POST', body: 'x'.repeat(10_000) })
    assert.equal(big.status, 413)
    await big.arrayBuffer()
    // a module that prints no CGI headers: echo's output is just its input
    const echo = await caller.deploy({ name: 'echo', module: await readFile(wasmPath('echo')) })
    const noHeaders = await fetch(`${gatewayUrl}fn/${echo.address}/`, { method: 'POST', body: 'no headers here' })
    const reason = await noHeaders.text()
    assert.equal(noHeaders.status, 502)
    assert.match(reason, /^FunctionResponseError: /)
    assert.ok(noHeaders.headers.get('x-wasmesh-receipt') != null, 'a 502 from the module still carries its receipt')
    const index = await fetch(gatewayUrl)
    assert.equal(index.status, 200)
    const listed = await index.json() as { functions: Array<{ address: string }> }
    assert.ok(listed.functions.some(fn => fn.address === address))
    assert.equal(gateway.exit, undefined, 'the gateway is still running')
  })

  it('refuses a manifest for the address signed by another key', async () => {
    const known = caller.functions().find(fn => fn.address === address)
    assert.ok(known != null)
    const forged = await signManifest({ ...known.manifest, version: known.manifest.version + 1_000_000 }, await generateKeyPair('Ed25519'))
    await assert.rejects(caller.addManifest(forged), InvalidManifestError)
    assert.equal(caller.functions().find(fn => fn.address === address)?.manifest.version, version)
  })

  it('replaces an older version with a newer one everywhere within seconds', async () => {
    // the owner comes back (the identity `wasmesh deploy` keeps in $WASMESH_HOME/owner), publishes version 2 and leaves
    const owner = await createPeer({ bootstrap: [network.bootstrapAddr], dataDir: join(network.home, 'owner') })
    let redeployed
    try {
      redeployed = await owner.deploy({ name: 'markdown', module: await readFile(wasmPath('markdown')), env: { THEME: 'dark' }, replicas: 0 })
    } finally {
      await owner.stop()
    }
    assert.equal(redeployed.address, address)
    const newer = redeployed.manifest.version
    assert.ok(newer > version)
    assert.ok(redeployed.reached >= 1, 'a neighbour confirmed it holds the new manifest before the owner left')
    const deadline = Date.now() + 20_000
    let seenByCaller = 0
    let seenByGateway = 0
    while (Date.now() < deadline && (seenByCaller !== newer || seenByGateway !== newer)) {
      seenByCaller = caller.functions().find(fn => fn.address === address)?.manifest.version ?? 0
      const response = await fetch(`${gatewayUrl}fn/${address}/`)
      await response.arrayBuffer()
      seenByGateway = Number(response.headers.get('x-wasmesh-function-version'))
      await new Promise(resolve => setTimeout(resolve, 250))
    }
    assert.equal(seenByCaller, newer)
    assert.equal(seenByGateway, newer)
  })
})
