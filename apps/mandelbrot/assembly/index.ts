// Mandelbrot tile renderer, direct ABI (no imports). Input, little-endian:
// f64 re0, f64 im0, f64 step, u32 width, u32 height, u32 maxIter (36 bytes):
// pixel (x, y) is the point re0 + x*step, im0 - y*step (rows go down). Output: width*height
// RGBA pixels, row by row. Only f64 add/mul/compare: exact in every engine.

const INPUT_BYTES = 36
const MAX_SIDE: u32 = 4096

// A 16-colour cycle (the classic Ultra Fractal palette), as 0xRRGGBB.
const PALETTE: StaticArray<u32> = [
  0x421e0f, 0x19071a, 0x09012f, 0x040449, 0x000764, 0x0c2c8a, 0x1852b1, 0x397dd1,
  0x86b5e5, 0xd3ecf8, 0xf1e9bf, 0xf8c95f, 0xffaa00, 0xcc8000, 0x995700, 0x6a3403
]

export function alloc (len: i32): i32 {
  return <i32>heap.alloc(<usize>len)
}

export function run (ptr: i32, len: i32): i64 {
  if (len < INPUT_BYTES) unreachable()
  const at = <usize>ptr
  const re0 = load<f64>(at)
  const im0 = load<f64>(at, 8)
  const step = load<f64>(at, 16)
  const width = load<u32>(at, 24)
  const height = load<u32>(at, 28)
  const maxIter = load<u32>(at, 32)
  if (width > MAX_SIDE || height > MAX_SIDE) unreachable()
  const size = width * height * 4
  const out = heap.alloc(<usize>size)
  let p = out
  for (let y: u32 = 0; y < height; y++) {
    const ci = im0 - <f64>y * step
    for (let x: u32 = 0; x < width; x++) {
      const cr = re0 + <f64>x * step
      let zr = 0.0
      let zi = 0.0
      let zr2 = 0.0
      let zi2 = 0.0
      let i: u32 = 0
      while (i < maxIter && zr2 + zi2 <= 4.0) {
        zi = 2.0 * zr * zi + ci
        zr = zr2 - zi2 + cr
        zr2 = zr * zr
        zi2 = zi * zi
        i++
      }
      const rgb = i == maxIter ? 0 : unchecked(PALETTE[i & 15])
      store<u8>(p, <u8>(rgb >> 16))
      store<u8>(p, <u8>(rgb >> 8), 1)
      store<u8>(p, <u8>rgb, 2)
      store<u8>(p, 255, 3)
      p += 4
    }
  }
  return (<i64>out << 32) | <i64>size
}
