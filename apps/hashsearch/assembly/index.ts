// Proof-of-work search, direct ABI (no imports): finds the nonces in a range
// whose SHA-256(prefix || nonce as 8 bytes big-endian) starts with `bits`
// zero bits. Input, little-endian: u64 start, u32 count, u32 bits, then the
// prefix (at most 64 bytes). Output: u32 matches, then per match (at most
// MAX_FOUND, in nonce order) u64 nonce (LE) and the 32-byte digest.

const HEADER_BYTES = 16
const MAX_PREFIX = 64
const MAX_FOUND: u32 = 64
const MATCH_BYTES = 40

const K: StaticArray<u32> = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
]

const H0: StaticArray<u32> = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]

const W = new StaticArray<u32>(64)
const H = new StaticArray<u32>(8)

export function alloc (len: i32): i32 {
  return <i32>heap.alloc(<usize>len)
}

function compress (block: usize): void {
  for (let i = 0; i < 16; i++) {
    unchecked(W[i] = bswap<u32>(load<u32>(block + (<usize>i << 2))))
  }
  for (let i = 16; i < 64; i++) {
    const w15 = unchecked(W[i - 15])
    const w2 = unchecked(W[i - 2])
    const s0 = rotr<u32>(w15, 7) ^ rotr<u32>(w15, 18) ^ (w15 >>> 3)
    const s1 = rotr<u32>(w2, 17) ^ rotr<u32>(w2, 19) ^ (w2 >>> 10)
    unchecked(W[i] = unchecked(W[i - 16]) + s0 + unchecked(W[i - 7]) + s1)
  }
  let a = unchecked(H[0])
  let b = unchecked(H[1])
  let c = unchecked(H[2])
  let d = unchecked(H[3])
  let e = unchecked(H[4])
  let f = unchecked(H[5])
  let g = unchecked(H[6])
  let h = unchecked(H[7])
  for (let i = 0; i < 64; i++) {
    const t1 = h + (rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25)) + ((e & f) ^ (~e & g)) + unchecked(K[i]) + unchecked(W[i])
    const t2 = (rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))
    h = g
    g = f
    f = e
    e = d + t1
    d = c
    c = b
    b = a
    a = t1 + t2
  }
  unchecked(H[0] += a)
  unchecked(H[1] += b)
  unchecked(H[2] += c)
  unchecked(H[3] += d)
  unchecked(H[4] += e)
  unchecked(H[5] += f)
  unchecked(H[6] += g)
  unchecked(H[7] += h)
}

/** Leading zero bits of the digest in H. */
function leadingZeros (): u32 {
  let zeros: u32 = 0
  for (let i = 0; i < 8; i++) {
    const word = unchecked(H[i])
    zeros += <u32>clz<u32>(word)
    if (word != 0) break
  }
  return zeros
}

export function run (ptr: i32, len: i32): i64 {
  if (len < HEADER_BYTES || len > HEADER_BYTES + MAX_PREFIX) unreachable()
  const at = <usize>ptr
  const start = load<u64>(at)
  const count = load<u32>(at, 8)
  const bits = load<u32>(at, 12)
  const prefixLength = <usize>(len - HEADER_BYTES)
  // The padded message: prefix, nonce, 0x80, zeros, bit length (big-endian).
  const messageLength = prefixLength + 8
  const blocks = (messageLength + 9 + 63) >> 6
  const message = heap.alloc(blocks << 6)
  memory.fill(message, 0, blocks << 6)
  memory.copy(message, at + HEADER_BYTES, prefixLength)
  store<u8>(message + messageLength, 0x80)
  store<u64>(message + (blocks << 6) - 8, bswap<u64>(<u64>messageLength << 3))
  const out = heap.alloc(4 + <usize>MAX_FOUND * MATCH_BYTES)
  let found: u32 = 0
  for (let n: u32 = 0; n < count; n++) {
    const nonce = start + <u64>n
    store<u64>(message + prefixLength, bswap<u64>(nonce))
    for (let i = 0; i < 8; i++) unchecked(H[i] = H0[i])
    for (let block: usize = 0; block < blocks; block++) compress(message + (block << 6))
    if (leadingZeros() >= bits && found < MAX_FOUND) {
      const entry = out + 4 + <usize>found * MATCH_BYTES
      store<u64>(entry, nonce)
      for (let i = 0; i < 8; i++) store<u32>(entry + 8 + (<usize>i << 2), bswap<u32>(unchecked(H[i])))
      found++
    }
  }
  store<u32>(out, found)
  const size = 4 + found * MATCH_BYTES
  return (<i64>out << 32) | <i64>size
}
