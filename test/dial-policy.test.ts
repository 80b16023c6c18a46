import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Connection, Libp2p } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { dialableFrom } from '../apps/cli/page-server.ts'
import { BOOTSTRAP_DIAL_ATTEMPTS } from '../protocol/constants.ts'
import { bootstrapDialer, type BootstrapDialerComponents } from '../protocol/net/bootstrap.ts'
import { dialPolicy, scopeOfHostname } from '../web/dial-policy.ts'

const PEER = '12D3KooWGRUVh8gSZnF5VhZjcf5Z8XrGG7zy6L5fnqg9ZtAJMKAs'
const denied = (policy: ReturnType<typeof dialPolicy>, addr: string): boolean => policy(multiaddr(addr))

test('hosts are loopback, private (LAN) or public', () => {
  assert.equal(scopeOfHostname('localhost'), 'loopback')
  assert.equal(scopeOfHostname('127.0.0.1'), 'loopback')
  assert.equal(scopeOfHostname('[::1]'), 'loopback')
  assert.equal(scopeOfHostname('192.168.1.20'), 'private')
  assert.equal(scopeOfHostname('10.0.0.7'), 'private')
  assert.equal(scopeOfHostname('172.20.1.1'), 'private')
  assert.equal(scopeOfHostname('laptop.local'), 'private')
  assert.equal(scopeOfHostname('172.32.0.1'), 'public')
  assert.equal(scopeOfHostname('mesh.example.org'), 'public')
  assert.equal(scopeOfHostname(undefined), 'public')
})

test('a page served from a LAN host dials ws:// to LAN addresses, but not loopback', () => {
  const policy = dialPolicy({ pageHost: '192.168.1.20', bootstrap: [`/ip4/192.168.1.20/tcp/4302/ws/p2p/${PEER}`] })
  assert.equal(denied(policy, `/ip4/192.168.1.20/tcp/4302/ws/p2p/${PEER}`), false)
  assert.equal(denied(policy, '/ip4/192.168.1.31/tcp/4002/ws'), false)
  assert.equal(denied(policy, '/ip4/127.0.0.1/tcp/4302/ws'), true)
})

test('a page served from loopback dials loopback and LAN', () => {
  const policy = dialPolicy({ pageHost: '127.0.0.1', bootstrap: [] })
  assert.equal(denied(policy, '/ip4/127.0.0.1/tcp/4302/ws'), false)
  assert.equal(denied(policy, '/ip4/10.1.2.3/tcp/4302/ws'), false)
})

test('a page served from a public host refuses private dials and plain ws://, except to its bootstrap node', () => {
  const policy = dialPolicy({ pageHost: 'mesh.example.org', bootstrap: [`/dns4/relay.example.org/tcp/443/tls/ws/p2p/${PEER}`, `/ip4/192.168.1.20/tcp/4302/ws/p2p/${PEER}`] })
  assert.equal(denied(policy, '/ip4/192.168.1.31/tcp/4002/ws'), true)
  assert.equal(denied(policy, '/ip4/127.0.0.1/tcp/4302/ws'), true)
  assert.equal(denied(policy, '/ip4/203.0.113.9/tcp/80/ws'), true)
  assert.equal(denied(policy, '/dns4/relay.example.org/tcp/443/tls/ws'), false)
  assert.equal(denied(policy, '/ip4/203.0.113.9/tcp/443/tls/ws'), false)
  assert.equal(denied(policy, `/ip4/192.168.1.20/tcp/4302/ws/p2p/${PEER}`), false)
  assert.equal(denied(policy, `/dns4/relay.example.org/tcp/443/tls/ws/p2p/${PEER}/p2p-circuit/webrtc/p2p/${PEER}`), false)
})

test('config.json lists what the asking browser can dial: no wildcard, no loopback for a LAN visitor, its own host first', () => {
  const addresses = [
    `/ip4/127.0.0.1/tcp/4302/ws/p2p/${PEER}`,
    `/ip4/0.0.0.0/tcp/4302/ws/p2p/${PEER}`,
    `/ip4/10.0.0.4/tcp/4302/ws/p2p/${PEER}`,
    `/ip4/192.168.1.20/tcp/4302/ws/p2p/${PEER}`,
    `/ip4/192.168.1.20/tcp/4301/p2p/${PEER}`
  ]
  assert.deepEqual(dialableFrom(addresses, '192.168.1.20:4300'), [`/ip4/192.168.1.20/tcp/4302/ws/p2p/${PEER}`, `/ip4/10.0.0.4/tcp/4302/ws/p2p/${PEER}`])
  assert.deepEqual(dialableFrom(addresses, '127.0.0.1:4300'), [`/ip4/127.0.0.1/tcp/4302/ws/p2p/${PEER}`, `/ip4/10.0.0.4/tcp/4302/ws/p2p/${PEER}`, `/ip4/192.168.1.20/tcp/4302/ws/p2p/${PEER}`])
})

test('joining dials a bootstrap node again when it dropped the handshake, but not when nothing listens', async () => {
  const dialsUntilUp = (failures: Error[]): { dials: () => number, libp2p: BootstrapDialerComponents['libp2p'] } => {
    let dials = 0
    return {
      dials: () => dials,
      libp2p: {
        dial: async () => {
          const failure = failures[dials++]
          if (failure != null) {
            throw failure
          }
          return { remotePeer: peerIdFromString(PEER) } as unknown as Connection
        },
        peerStore: { merge: async () => ({}) } as unknown as Libp2p['peerStore']
      }
    }
  }
  const addr = `/ip4/127.0.0.1/tcp/4302/p2p/${PEER}`
  const busy = dialsUntilUp([new Error('Remote closed connection during opening')])
  await bootstrapDialer({ bootstrap: [addr] })({ libp2p: busy.libp2p }).join()
  assert.equal(busy.dials(), 2, 'a busy node is dialled again')

  const down = dialsUntilUp([new Error('connect ECONNREFUSED 127.0.0.1:4302'), new Error('unexpected second dial')])
  await assert.rejects(bootstrapDialer({ bootstrap: [addr] })({ libp2p: down.libp2p }).join(), (err: Error) => err.name === 'BootstrapError' && /ECONNREFUSED/.test(err.message))
  assert.equal(down.dials(), 1, 'a refused dial is final')

  const dropping = dialsUntilUp(Array.from({ length: 5 }, () => new Error('Remote closed connection during opening')))
  await assert.rejects(bootstrapDialer({ bootstrap: [addr] })({ libp2p: dropping.libp2p }).join(), { name: 'BootstrapError' })
  assert.equal(dropping.dials(), BOOTSTRAP_DIAL_ATTEMPTS, 'attempts are bounded')
})
