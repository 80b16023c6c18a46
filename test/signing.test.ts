import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { nodeSignatureVerifier, nodeSigner } from '../node/signing.ts'

/** The Node signer and verifier must give exactly the answers of the libp2p key they stand in for. */
describe('Node Ed25519 signer and verifier', () => {
  it('sign the same bytes as the libp2p key, and verify what it verifies', async () => {
    const key = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(key)
    const verify = nodeSignatureVerifier()
    for (let i = 0; i < 20; i++) {
      const data = crypto.getRandomValues(new Uint8Array(1 + i * 37))
      const fast = await nodeSigner(key).sign(data)
      assert.deepEqual(fast, await key.sign(data)) // Ed25519 signatures are deterministic
      assert.equal(await verify(peerId.toString(), peerId.publicKey, data, fast), true)
      assert.equal(await peerId.publicKey.verify(data, fast), true)
    }
  })

  it('refuse altered data, altered or short signatures, and another peer\'s key', async () => {
    const key = await generateKeyPair('Ed25519')
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const peerId = peerIdFromPrivateKey(key)
    const verify = nodeSignatureVerifier()
    const data = new TextEncoder().encode('receipt payload')
    const signature = await nodeSigner(key).sign(data)
    assert.equal(await verify(peerId.toString(), peerId.publicKey, new TextEncoder().encode('receipt payloaD'), signature), false)
    const flipped = Uint8Array.from(signature)
    flipped[10] = (flipped[10] as number) ^ 1
    assert.equal(await verify(peerId.toString(), peerId.publicKey, data, flipped), false)
    assert.equal(await verify(peerId.toString(), peerId.publicKey, data, signature.subarray(0, 63)), false)
    assert.equal(await verify(other.toString(), other.publicKey, data, signature), false)
  })
})
