import type { PrivateKey } from '@libp2p/interface'

// the DER header that wraps a raw Ed25519 seed as PKCS #8
const PKCS8_ED25519 = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]

/** An Ed25519 libp2p key as PKCS #8 DER, the form both OpenSSL and WebCrypto import. */
export function ed25519Pkcs8 (key: PrivateKey): Uint8Array<ArrayBuffer> {
  return new Uint8Array([...PKCS8_ED25519, ...key.raw.subarray(0, 32)])
}
