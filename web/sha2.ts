/**
 * `multiformats/hashes/sha2` for pages, swapped in by vite.config.ts: the
 * same hashers, computed with WebCrypto when the page has it and with
 * @noble/hashes when it does not. A page served over plain HTTP from a LAN
 * address (a phone opening `http://192.168.1.20:4300/`) is not a secure
 * context, so `crypto.subtle` is undefined there, and every CID (Helia's
 * blocks, our job specs) would fail to hash.
 */
import { sha256 as nobleSha256, sha512 as nobleSha512 } from '@noble/hashes/sha2.js'
import { from } from 'multiformats/hashes/hasher'

function digest (name: 'SHA-256' | 'SHA-512', fallback: (data: Uint8Array) => Uint8Array): (data: Uint8Array) => Promise<Uint8Array<ArrayBuffer>> | Uint8Array<ArrayBuffer> {
  return data => globalThis.crypto?.subtle != null
    // exactly what multiformats' own browser hasher does when WebCrypto is there
    ? crypto.subtle.digest(name, data as Uint8Array<ArrayBuffer>).then(hash => new Uint8Array(hash))
    : new Uint8Array(fallback(data))
}

export const sha256 = from({ name: 'sha2-256', code: 0x12, encode: digest('SHA-256', nobleSha256) })
export const sha512 = from({ name: 'sha2-512', code: 0x13, encode: digest('SHA-512', nobleSha512) })
