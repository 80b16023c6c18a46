/**
 * `startBootstrap({ tls })` (what `wasmesh bootstrap --tls-cert --tls-key`
 * runs) serves WebSockets as wss://: a real libp2p node dials its `/tls/ws`
 * address over TLS on loopback, trusting a self-signed certificate made for
 * the test with openssl, and pings it.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getCACertificates, setDefaultCACertificates } from 'node:tls'
import { after, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import { startBootstrap, type BootstrapNode } from '../node/index.ts'
import { nodeLibp2pOptions } from '../node/libp2p-options.ts'

const dir = await mkdtemp(join(tmpdir(), 'wasmesh-tls-'))
let bootstrap: BootstrapNode | undefined

after(async () => {
  await bootstrap?.stop()
  await rm(dir, { recursive: true, force: true })
})

test('a bootstrap node with a certificate listens on /tls/ws, and a peer dials it over TLS', async () => {
  const certFile = join(dir, 'cert.pem')
  const keyFile = join(dir, 'key.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' })
  const cert = await readFile(certFile, 'utf8')
  // trust it as a CA would be trusted: the dialer verifies the certificate, as a browser would
  setDefaultCACertificates([...getCACertificates('default'), cert])

  bootstrap = await startBootstrap({ tls: { cert, key: await readFile(keyFile, 'utf8') } })
  const wss = bootstrap.addresses().find(addr => addr.includes('/tls/ws/'))
  assert.ok(wss != null, `no /tls/ws address among ${bootstrap.addresses().join(', ')}`)
  assert.equal(bootstrap.addresses().some(addr => /\/tcp\/\d+\/ws\//.test(addr)), false, 'a plain ws:// address is still served')

  const client = await createLibp2p(nodeLibp2pOptions({ privateKey: await generateKeyPair('Ed25519'), listen: [] })) as unknown as Libp2p<{ ping: Ping }>
  try {
    const connection = await client.dial(multiaddr(wss), { signal: AbortSignal.timeout(30_000) })
    assert.match(connection.remoteAddr.toString(), /\/tls\/ws/)
    assert.ok(await client.services.ping.ping(multiaddr(wss), { signal: AbortSignal.timeout(30_000) }) >= 0)
  } finally {
    await client.stop()
  }
})
