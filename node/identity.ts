import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'

/**
 * Loads the peer's Ed25519 key from `<dataDir>/identity.key`, creating it on
 * first use. Ed25519 peer ids embed the public key, which is what lets anyone
 * verify a receipt from the peer id alone.
 */
export async function loadOrCreateIdentity (dataDir: string): Promise<PrivateKey> {
  const file = join(dataDir, 'identity.key')
  try {
    return privateKeyFromProtobuf(await readFile(file))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`cannot read the peer identity at ${file}: ${(err as Error).message}`, { cause: err })
    }
  }
  const key = await generateKeyPair('Ed25519')
  await mkdir(dataDir, { recursive: true })
  await writeFile(file, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
  return key
}
