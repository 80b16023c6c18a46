import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { MemoryDatastore } from 'datastore-core'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { fromString, toString } from 'uint8arrays'
import { DEFAULT_LIMITS } from '../protocol/constants.ts'
import { FunctionRegistry } from '../protocol/functions/registry.ts'
import { httpFailure, parseFunctionRoute } from '../protocol/functions/http.ts'
import { parseWagiOutput, wagiEnv } from '../protocol/functions/wagi.ts'
import { FunctionResponseError, InvalidManifestError, MalformedMessageError, NoWorkersError, WasmTrapError } from '../protocol/errors.ts'
import { decodeSignedManifest, encodeSignedManifest, parseFunctionAddress, signManifest, verifyManifest, type FunctionManifest } from '../protocol/wire/function.ts'
import type { FunctionRegistryComponents } from '../protocol/functions/registry.ts'
import type { PrivateKey } from '@libp2p/interface'

let ownerKey: PrivateKey
let otherKey: PrivateKey
let owner: string
let module: CID

function manifest (overrides: Partial<FunctionManifest> = {}): FunctionManifest {
  return { v: 1, owner, name: 'thumbnail', version: 1, module, abi: 'wagi', limits: { ...DEFAULT_LIMITS }, env: { MODE: 'fast' }, timestamp: 1_700_000_000_000, ...overrides }
}

/** A registry with no network behind it: accept() is the path gossip and sync both take. */
function offlineRegistry (): FunctionRegistry {
  return new FunctionRegistry({ datastore: new MemoryDatastore() } as unknown as FunctionRegistryComponents)
}

before(async () => {
  ownerKey = await generateKeyPair('Ed25519')
  otherKey = await generateKeyPair('Ed25519')
  owner = peerIdFromPrivateKey(ownerKey).toString()
  module = CID.createV1(0x55, await sha256.digest(fromString('module')))
})

describe('function manifests', () => {
  it('round-trips through signing, encoding and verification', async () => {
    const signed = await signManifest(manifest(), ownerKey)
    const verified = await verifyManifest(decodeSignedManifest(encodeSignedManifest(signed)))
    assert.equal(verified.manifest.owner, owner)
    assert.equal(verified.manifest.name, 'thumbnail')
    assert.ok(verified.manifest.module.equals(module))
    assert.deepEqual(verified.manifest.env, { MODE: 'fast' })
  })

  it('refuses a manifest for someone else\'s address', async () => {
    const forged = await signManifest(manifest({ version: 99 }), otherKey)
    await assert.rejects(verifyManifest(forged), InvalidManifestError)
  })

  it('refuses a payload changed after signing', async () => {
    const signed = await signManifest(manifest(), ownerKey)
    const tampered = await signManifest(manifest({ env: { MODE: 'evil' } }), ownerKey)
    await assert.rejects(verifyManifest({ payload: tampered.payload, signature: signed.signature }), InvalidManifestError)
  })

  it('refuses malformed names, fields and sizes', async () => {
    await assert.rejects(signManifest(manifest({ name: 'Not/A name' }), ownerKey), MalformedMessageError)
    await assert.rejects(signManifest({ ...manifest(), extra: 1 } as unknown as FunctionManifest, ownerKey), MalformedMessageError)
    assert.throws(() => decodeSignedManifest(new Uint8Array(20_000)), MalformedMessageError)
    assert.throws(() => decodeSignedManifest(fromString('not cbor')), MalformedMessageError)
    assert.throws(() => parseFunctionAddress('nobody/thumbnail'), MalformedMessageError)
    assert.deepEqual(parseFunctionAddress(`${owner}/thumbnail`), { owner, name: 'thumbnail' })
  })

  it('keeps the newest version per address and refuses older or equal ones', async () => {
    const registry = offlineRegistry()
    await registry.accept(await signManifest(manifest({ version: 2 }), ownerKey))
    await assert.rejects(registry.accept(await signManifest(manifest({ version: 1 }), ownerKey)), InvalidManifestError)
    await assert.rejects(registry.accept(await signManifest(manifest({ version: 2, env: {} }), ownerKey)), InvalidManifestError)
    await registry.accept(await signManifest(manifest({ version: 3 }), ownerKey))
    await assert.rejects(registry.accept(await signManifest(manifest({ version: 4 }), otherKey)), InvalidManifestError)
    assert.equal(registry.get(`${owner}/thumbnail`)?.manifest.version, 3)
  })
})

describe('WAGI', () => {
  it('maps a request to CGI variables, withholding credentials and hop-by-hop headers', () => {
    const env = wagiEnv({
      method: 'POST',
      path: '/images/cat.png',
      query: 'w=64&h=64',
      headers: [['Content-Type', 'image/png'], ['X-Trace', 'a'], ['x-trace', 'b'], ['Host', 'example.org:8080'], ['Authorization', 'secret'], ['Cookie', 'id=1'], ['Connection', 'close']],
      body: 'abc'
    }, `/fn/${owner}/thumbnail`, { MODE: 'fast' })
    assert.equal(env.REQUEST_METHOD, 'POST')
    assert.equal(env.PATH_INFO, '/images/cat.png')
    assert.equal(env.QUERY_STRING, 'w=64&h=64')
    assert.equal(env.SCRIPT_NAME, `/fn/${owner}/thumbnail`)
    assert.equal(env.CONTENT_TYPE, 'image/png')
    assert.equal(env.CONTENT_LENGTH, '3')
    assert.equal(env.HTTP_X_TRACE, 'a, b')
    assert.equal(env.SERVER_NAME, 'example.org')
    assert.equal(env.MODE, 'fast')
    for (const withheld of ['HTTP_AUTHORIZATION', 'HTTP_COOKIE', 'HTTP_CONNECTION', 'HTTP_HOST', 'HTTP_CONTENT_TYPE']) {
      assert.equal(env[withheld], undefined, withheld)
    }
  })

  it('refuses requests no server should pass on', () => {
    assert.throws(() => wagiEnv({ method: 'GE T' }, '/fn/x'), MalformedMessageError)
    assert.throws(() => wagiEnv({ headers: { 'bad header': 'x' } }, '/fn/x'), MalformedMessageError)
    assert.throws(() => wagiEnv({ headers: { 'x-a': 'line\nbreak' } }, '/fn/x'), MalformedMessageError)
    assert.throws(() => wagiEnv({ path: '/a\0b' }, '/fn/x'), MalformedMessageError)
    assert.throws(() => wagiEnv({ headers: Array.from({ length: 300 }, (_, i): [string, string] => [`x-h${i}`, 'v']) }, '/fn/x'), MalformedMessageError)
  })

  it('parses headers, Status and Location from the module\'s output', () => {
    const ok = parseWagiOutput(fromString('Content-Type: text/html\r\nX-One: 1\r\n\r\n<h1>hi</h1>'))
    assert.equal(ok.status, 200)
    assert.deepEqual(ok.headers, [['content-type', 'text/html'], ['x-one', '1']])
    assert.equal(toString(ok.body), '<h1>hi</h1>')
    const missing = parseWagiOutput(fromString('Status: 404 Not Found\nContent-Type: text/plain\n\nnope'))
    assert.equal(missing.status, 404)
    assert.equal(toString(missing.body), 'nope')
    const moved = parseWagiOutput(fromString('Location: /elsewhere\n\n'))
    assert.equal(moved.status, 302)
    assert.deepEqual(moved.headers, [['location', '/elsewhere']])
  })

  it('refuses output that is not a CGI response', () => {
    assert.throws(() => parseWagiOutput(fromString('HELLO')), FunctionResponseError)
    assert.throws(() => parseWagiOutput(fromString('\n\nbody')), FunctionResponseError)
    assert.throws(() => parseWagiOutput(fromString('X-Only: 1\n\nbody')), FunctionResponseError)
    assert.throws(() => parseWagiOutput(fromString('Status: 9000\nContent-Type: text/plain\n\n')), FunctionResponseError)
    assert.throws(() => parseWagiOutput(fromString('no colon here\n\n')), FunctionResponseError)
  })
})

describe('functions over HTTP', () => {
  it('parses /fn/<owner>/<name>/<path> and refuses malformed routes', () => {
    assert.deepEqual(parseFunctionRoute(`/fn/${owner}/thumbnail/a%20b/c`), { address: `${owner}/thumbnail`, path: '/a b/c' })
    assert.deepEqual(parseFunctionRoute(`/fn/${owner}/thumbnail`), { address: `${owner}/thumbnail`, path: '/' })
    assert.equal(parseFunctionRoute(`/fn/${owner}/thumbnail/%E0%A4%A`), undefined)
    assert.equal(parseFunctionRoute(`/fn/${owner}/thumbnail/%00`), undefined)
    assert.equal(parseFunctionRoute(`/fn/${owner}/Bad Name/`), undefined)
    assert.equal(parseFunctionRoute('/static/app.js'), undefined)
  })

  it('maps failures to HTTP statuses', () => {
    assert.equal(httpFailure(new MalformedMessageError('x')).status, 400)
    assert.equal(httpFailure(new FunctionResponseError('x')).status, 502)
    const busy = httpFailure(new NoWorkersError('x'))
    assert.equal(busy.status, 503)
    assert.ok(busy.headers.some(([name]) => name === 'retry-after'))
    const trap = Object.assign(new WasmTrapError('unreachable'), { receipt: { worker: owner, job: module } })
    const failed = httpFailure(trap)
    assert.equal(failed.status, 502)
    assert.match(failed.body, /^WasmTrapError: unreachable/)
    assert.ok(failed.headers.some(([name, value]) => name === 'x-wasmesh-worker' && value === owner))
  })
})
