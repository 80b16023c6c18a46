import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { MalformedMessageError } from '../errors.ts'

/** Encodes a value as dag-cbor: deterministic, so equal values give equal bytes and equal CIDs. */
export function encodeCbor (value: unknown): Uint8Array {
  return dagCbor.encode(value)
}

/** Decodes dag-cbor, turning any decoder failure into a MalformedMessageError. */
export function decodeCbor (bytes: Uint8Array, what: string): unknown {
  try {
    return dagCbor.decode(bytes)
  } catch (err) {
    throw new MalformedMessageError(`${what} is not valid dag-cbor: ${(err as Error).message}`)
  }
}

/** The CIDv1 (dag-cbor, sha2-256) of an encoded block. */
export async function cborCid (bytes: Uint8Array): Promise<CID> {
  return CID.createV1(dagCbor.code, await sha256.digest(bytes))
}

/** sha2-256 multihash bytes of some content: how outputs are compared across workers. */
export async function contentHash (bytes: Uint8Array): Promise<Uint8Array> {
  return (await sha256.digest(bytes)).bytes
}
