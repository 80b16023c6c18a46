// A Markdown renderer as a WAGI function: the request body (Markdown) on
// stdin, HTML on stdout after CGI headers. GET with no body renders a sample;
// `?page` wraps the HTML in a whole document. The subset: headings, paragraphs,
// lists, block quotes, fenced code, rules, **bold**, *italic*, `code` and
// [links](url); everything else is text, HTML-escaped. WASI calls are
// declared here directly, so the module imports only what it uses.

// @ts-ignore: decorator
@external('wasi_snapshot_preview1', 'fd_read')
declare function fd_read (fd: u32, iovs: usize, iovsLen: u32, nread: usize): u16
// @ts-ignore: decorator
@external('wasi_snapshot_preview1', 'fd_write')
declare function fd_write (fd: u32, iovs: usize, iovsLen: u32, nwritten: usize): u16
// @ts-ignore: decorator
@external('wasi_snapshot_preview1', 'environ_sizes_get')
declare function environ_sizes_get (count: usize, size: usize): u16
// @ts-ignore: decorator
@external('wasi_snapshot_preview1', 'environ_get')
declare function environ_get (environ: usize, buf: usize): u16

const SAMPLE = '# Hello from the mesh\n\nThis page was rendered by **WebAssembly** on a *visiting peer*, not on a server.\n\n- deployed by name, signed by its owner\n- called over `HTTP` or from a Service Worker\n- every answer carries a signed receipt\n\n> Front end as back end.\n\n```\nwasmesh deploy markdown.wasm --name markdown\n```\n\nSee [the docs](https://github.com/) for more.\n'

// ---- output buffer ----
let out: usize = 0
let outLen: usize = 0
let outCap: usize = 0

function put (byte: u8): void {
  if (outLen == outCap) {
    const cap = outCap == 0 ? <usize>8192 : outCap * 2
    const grown = heap.alloc(cap)
    if (outLen > 0) memory.copy(grown, out, outLen)
    out = grown
    outCap = cap
  }
  store<u8>(out + outLen, byte)
  outLen++
}

/** Appends an ASCII literal. */
function puts (s: string): void {
  for (let i = 0; i < s.length; i++) put(<u8>s.charCodeAt(i))
}

function writeAll (fd: u32, ptr: usize, len: usize): void {
  const iov = heap.alloc(8)
  const written = heap.alloc(4)
  while (len > 0) {
    store<u32>(iov, <u32>ptr)
    store<u32>(iov, <u32>len, 4)
    if (fd_write(fd, iov, 1, written) != 0) return
    const n = <usize>load<u32>(written)
    ptr += n
    len -= n
  }
}

function writeString (fd: u32, s: string): void {
  const bytes = String.UTF8.encode(s)
  writeAll(fd, changetype<usize>(bytes), <usize>bytes.byteLength)
}

// ---- input ----
let src: usize = 0
let srcLen: i32 = 0

function readStdin (): void {
  let cap: usize = 65536
  let buf = heap.alloc(cap)
  let len: usize = 0
  const iov = heap.alloc(8)
  const nread = heap.alloc(4)
  while (true) {
    if (len == cap) {
      const grown = heap.alloc(cap * 2)
      memory.copy(grown, buf, len)
      buf = grown
      cap *= 2
    }
    store<u32>(iov, <u32>(buf + len))
    store<u32>(iov, <u32>(cap - len), 4)
    if (fd_read(0, iov, 1, nread) != 0) break
    const n = <usize>load<u32>(nread)
    if (n == 0) break
    len += n
  }
  src = buf
  srcLen = <i32>len
}

function at (i: i32): u8 {
  return i >= 0 && i < srcLen ? load<u8>(src + <usize>i) : 0
}

// ---- environment ----
function getenv (name: string): string {
  const counts = heap.alloc(8)
  environ_sizes_get(counts, counts + 4)
  const count = load<u32>(counts)
  const size = load<u32>(counts, 4)
  const pointers = heap.alloc(<usize>count * 4 + 4)
  const buf = heap.alloc(<usize>size + 1)
  environ_get(pointers, buf)
  const prefix = name + '='
  for (let i: u32 = 0; i < count; i++) {
    const entry = <usize>load<u32>(pointers + <usize>i * 4)
    let end = entry
    while (load<u8>(end) != 0) end++
    const text = String.UTF8.decodeUnsafe(entry, end - entry)
    if (text.startsWith(prefix)) return text.substring(prefix.length)
  }
  return ''
}

// ---- rendering ----
function escapeByte (c: u8): void {
  if (c == 0x26) puts('&amp;')
  else if (c == 0x3c) puts('&lt;')
  else if (c == 0x3e) puts('&gt;')
  else if (c == 0x22) puts('&quot;')
  else put(c)
}

function escapeRange (s: i32, e: i32): void {
  for (let i = s; i < e; i++) escapeByte(at(i))
}

function find (c: u8, s: i32, e: i32): i32 {
  for (let i = s; i < e; i++) if (at(i) == c) return i
  return -1
}

function findPair (c: u8, s: i32, e: i32): i32 {
  for (let i = s; i + 1 < e; i++) if (at(i) == c && at(i + 1) == c) return i
  return -1
}

function lower (c: u8): u8 {
  return c >= 0x41 && c <= 0x5a ? c + 0x20 : c
}

/** A link target that would run script is replaced by "#". */
function safeUrl (s: i32, e: i32): bool {
  const scheme = 'javascript:'
  let i = s
  while (i < e && at(i) == 0x20) i++
  if (e - i < scheme.length) return true
  for (let k = 0; k < scheme.length; k++) {
    if (lower(at(i + k)) != <u8>scheme.charCodeAt(k)) return true
  }
  return false
}

function inline (s: i32, e: i32): void {
  let i = s
  while (i < e) {
    const c = at(i)
    if (c == 0x60) {
      const close = find(0x60, i + 1, e)
      if (close >= 0) {
        puts('<code>'); escapeRange(i + 1, close); puts('</code>')
        i = close + 1
        continue
      }
    } else if ((c == 0x2a || c == 0x5f) && at(i + 1) == c) {
      const close = findPair(c, i + 2, e)
      if (close > i + 2) {
        puts('<strong>'); inline(i + 2, close); puts('</strong>')
        i = close + 2
        continue
      }
    } else if (c == 0x2a || c == 0x5f) {
      const close = find(c, i + 1, e)
      if (close > i + 1) {
        puts('<em>'); inline(i + 1, close); puts('</em>')
        i = close + 1
        continue
      }
    } else if (c == 0x5b) {
      const bracket = find(0x5d, i + 1, e)
      if (bracket >= 0 && at(bracket + 1) == 0x28) {
        const paren = find(0x29, bracket + 2, e)
        if (paren >= 0) {
          puts('<a href="')
          if (safeUrl(bracket + 2, paren)) escapeRange(bracket + 2, paren)
          else puts('#')
          puts('">'); inline(i + 1, bracket); puts('</a>')
          i = paren + 1
          continue
        }
      }
    }
    escapeByte(c)
    i++
  }
}

let paraStart: i32 = -1
let paraEnd: i32 = 0
let list: u8 = 0 // 0: none, 0x75 ('u'): <ul>, 0x6f ('o'): <ol>

function closeParagraph (): void {
  if (paraStart < 0) return
  puts('<p>'); inline(paraStart, paraEnd); puts('</p>\n')
  paraStart = -1
}

function closeList (): void {
  if (list == 0x75) puts('</ul>\n')
  else if (list == 0x6f) puts('</ol>\n')
  list = 0
}

function openList (kind: u8): void {
  if (list == kind) return
  closeList()
  puts(kind == 0x75 ? '<ul>\n' : '<ol>\n')
  list = kind
}

function isRule (s: i32, e: i32): bool {
  const c = at(s)
  if (c != 0x2d && c != 0x2a && c != 0x5f) return false
  let n = 0
  for (let i = s; i < e; i++) {
    const d = at(i)
    if (d == c) n++
    else if (d != 0x20) return false
  }
  return n >= 3
}

function lineEnd (i: i32): i32 {
  while (i < srcLen && at(i) != 0x0a) i++
  return i
}

function trimEnd (s: i32, e: i32): i32 {
  while (e > s && (at(e - 1) == 0x0d || at(e - 1) == 0x20)) e--
  return e
}

function render (): void {
  let i = 0
  while (i < srcLen) {
    const next = lineEnd(i)
    const e = trimEnd(i, next)
    if (e == i) {
      closeParagraph(); closeList()
    } else if (at(i) == 0x60 && at(i + 1) == 0x60 && at(i + 2) == 0x60) {
      closeParagraph(); closeList()
      puts('<pre><code>')
      let j = next + 1
      while (j < srcLen) {
        const jn = lineEnd(j)
        if (at(j) == 0x60 && at(j + 1) == 0x60 && at(j + 2) == 0x60) {
          j = jn
          break
        }
        escapeRange(j, jn < srcLen ? jn + 1 : jn)
        j = jn + 1
      }
      puts('</code></pre>\n')
      i = j + 1
      continue
    } else if (at(i) == 0x23) {
      let level = 0
      while (at(i + level) == 0x23 && level < 7) level++
      if (level <= 6 && at(i + level) == 0x20) {
        closeParagraph(); closeList()
        const tag = String.fromCharCode(0x30 + level)
        puts('<h' + tag + '>'); inline(i + level + 1, e); puts('</h' + tag + '>\n')
      } else {
        paragraphLine(i, e)
      }
    } else if (isRule(i, e)) {
      closeParagraph(); closeList()
      puts('<hr>\n')
    } else if ((at(i) == 0x2d || at(i) == 0x2a || at(i) == 0x2b) && at(i + 1) == 0x20) {
      closeParagraph(); openList(0x75)
      puts('<li>'); inline(i + 2, e); puts('</li>\n')
    } else if (at(i) >= 0x30 && at(i) <= 0x39) {
      let d = i
      while (at(d) >= 0x30 && at(d) <= 0x39) d++
      if (at(d) == 0x2e && at(d + 1) == 0x20) {
        closeParagraph(); openList(0x6f)
        puts('<li>'); inline(d + 2, e); puts('</li>\n')
      } else {
        paragraphLine(i, e)
      }
    } else if (at(i) == 0x3e) {
      closeParagraph(); closeList()
      const s = at(i + 1) == 0x20 ? i + 2 : i + 1
      puts('<blockquote><p>'); inline(s, e); puts('</p></blockquote>\n')
    } else {
      paragraphLine(i, e)
    }
    i = next + 1
  }
  closeParagraph(); closeList()
}

function paragraphLine (s: i32, e: i32): void {
  closeList()
  if (paraStart < 0) paraStart = s
  paraEnd = e
}

export function _start (): void {
  const method = getenv('REQUEST_METHOD')
  if (method != 'GET' && method != 'POST' && method != 'HEAD') {
    writeString(1, 'Status: 405 Method Not Allowed\nContent-Type: text/plain\nAllow: GET, POST\n\nsend Markdown with POST, or GET for a sample\n')
    return
  }
  readStdin()
  if (srcLen == 0) {
    const sample = String.UTF8.encode(SAMPLE)
    src = changetype<usize>(sample)
    srcLen = sample.byteLength
  }
  const query = getenv('QUERY_STRING')
  const page = query == 'page' || query.startsWith('page=') || query.includes('&page')
  if (page) puts('<!doctype html>\n<html><head><meta charset="utf-8"><title>Rendered on the mesh</title></head><body>\n')
  render()
  if (page) puts('</body></html>\n')
  writeString(1, 'Content-Type: text/html; charset=utf-8\nX-Rendered-By: wasmesh-markdown\n\n')
  if (method != 'HEAD') writeAll(1, out, outLen)
}
