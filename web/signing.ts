import { ed25519Pkcs8 } from '../protocol/wire/ed25519.ts'
import type { Signer } from '../protocol/wire/receipt.ts'
import type { PrivateKey } from '@libp2p/interface'

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
    const cryptoKey = await crypto.subtle.importKey('pkcs8', ed25519Pkcs8(key), { name: 'Ed25519' }, false, ['sign'])
    return { sign: async data => new Uint8Array(await crypto.subtle.sign('Ed25519', cryptoKey, new Uint8Array(data))) }
  } catch {
    return key
  }
}
