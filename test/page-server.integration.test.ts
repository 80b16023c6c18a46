import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { ProcessNetwork } from './helpers/processes.ts'
import type { NodeProcess } from './helpers/processes.ts'

/** Sends raw bytes to the page server and resolves with what it answered (or '' if it closed without a word). */
async function raw (port: number, request: string, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer to ${JSON.stringify(request.slice(0, 60))} within ${timeoutMs} ms`)) }, timeoutMs)
    socket.on('data', chunk => { answer += chunk.toString('latin1') })
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(timer); resolve(answer) })
    socket.write(request) // not end(): a half-closed socket may be dropped before an asynchronous answer
  })
}

const statusOf = (answer: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)
const get = (path: string, headers = ''): string => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Connection: close\r\n\r\n`

/**
 * The bootstrap node's page server, as a separate process, against hostile
 * requests: each gets an HTTP error, and the process and its libp2p node live on.
 */
describe('page server under hostile requests', () => {
  let network: ProcessNetwork
  let bootstrap: NodeProcess
  let port: number

  before(async () => {
    network = await ProcessNetwork.start({ page: true, label: 'page-server' })
    bootstrap = network.bootstrap
    port = Number(new URL(network.pageUrl).port)
  })

  after(async () => {
    await network?.stop()
  })

  it('answers malformed percent-encoding with 400', async () => {
    for (const path of ['/%', '/%E0%A4%A', '/assets/%c0', '/%ZZ', '/a%00b']) {
      const answer = await raw(port, get(path))
      assert.equal(statusOf(answer), 400, `${path}: ${answer.slice(0, 80)}`)
    }
  })

  it('refuses traversal attempts', async () => {
    for (const path of ['/../../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2f..%2fetc%2fpasswd', '/assets/..%5c..%5cetc%5cpasswd']) {
      const answer = await raw(port, get(path))
      assert.ok([403, 404].includes(statusOf(answer)), `${path}: ${answer.slice(0, 80)}`)
      assert.doesNotMatch(answer, /root:/)
    }
  })

  it('answers huge headers and garbage with an error', async () => {
    assert.equal(statusOf(await raw(port, get('/', `X-Big: ${'a'.repeat(100_000)}\r\n`))), 431)
    assert.equal(statusOf(await raw(port, 'NOT HTTP AT ALL\r\n\r\n')), 400)
    assert.equal(statusOf(await raw(port, `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`)), 405)
  })

  it('keeps serving while slow clients hold sockets open', async () => {
    const slow = Array.from({ length: 50 }, () => {
      const socket = connect(port, '127.0.0.1')
      socket.on('error', () => {})
      socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n') // and never finish the headers
      return socket
    })
    try {
      const answer = await raw(port, get('/config.json'))
      assert.equal(statusOf(answer), 200)
    } finally {
      for (const socket of slow) {
        socket.destroy()
      }
    }
  })

  it('is still up afterwards: the page, its config and the libp2p node answer', async () => {
    assert.equal(bootstrap.exit, undefined, `the bootstrap process ended: ${bootstrap.stderr.join(' | ')}`)
    assert.equal(statusOf(await raw(port, get('/'))), 200)
    const config = await raw(port, get('/config.json'))
    assert.match(config, /"bootstrap":\["\/ip4\/127\.0\.0\.1\/tcp\/\d+\/ws\/p2p\//)
    const status = await network.run(['status', '--json'])
    assert.equal(status.code, 0, status.stderr)
  })
})
