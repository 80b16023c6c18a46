import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { nodeSigner } from '../node/signing.ts'

/** The Node signer must give exactly the signatures of the libp2p key it stands in for. */
describe('Node Ed25519 signer', () => {
  it('signs the same bytes as the libp2p key, and the peer id verifies them', async () => {
    const key = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(key)
    const signer = nodeSigner(key)
    for (let i = 0; i < 20; i++) {
      const data = crypto.getRandomValues(new Uint8Array(1 + i * 37))
      const signature = await signer.sign(data)
      assert.deepEqual(signature, await key.sign(data)) // Ed25519 signatures are deterministic
      assert.equal(await peerId.publicKey.verify(data, signature), true)
    }
  })

  it('leaves non-Ed25519 keys to libp2p', async () => {
    const key = await generateKeyPair('secp256k1')
    assert.equal(nodeSigner(key), key)
  })
})
