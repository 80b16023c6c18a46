import type { Signer } from '../protocol/receipt.ts'
import type { PrivateKey } from '@libp2p/interface'

// the DER header that wraps a raw Ed25519 seed as PKCS #8
const PKCS8_ED25519 = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]

/**
 * Ed25519 signing with the key imported into WebCrypto once. @libp2p/crypto
 * imports it again for every signature. Browsers without Ed25519 in
 * WebCrypto keep the libp2p key, which falls back to JavaScript.
 */
export async function webSigner (key: PrivateKey): Promise<Signer> {
  if (key.type !== 'Ed25519') {
    return key
  }
  try {
    const pkcs8 = new Uint8Array([...PKCS8_ED25519, ...key.raw.subarray(0, 32)])
    const cryptoKey = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign'])
    return { sign: async data => new Uint8Array(await crypto.subtle.sign('Ed25519', cryptoKey, new Uint8Array(data))) }
  } catch {
    return key
  }
}
