/**
 * The WASI host's filesystem, clock and limits, called directly as a module
 * would call them (test/helpers/wasi-guest.ts): copy-on-write mounts,
 * read-only refusal, limits and the errno each gives, confinement of
 * lookups, readdir cookies, and poll_oneoff sleeping on the virtual clock.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Mount, TreeDirectory, TreeEntry, TreeFile } from '../protocol/runtime/executor.ts'
import { MAX_OPEN_FDS } from '../protocol/runtime/fd-table.ts'
import { MAX_INODES } from '../protocol/runtime/fs.ts'
import { CLOCK_START_NS, CLOCK_STEP_NS } from '../protocol/runtime/virtual-clock.ts'
import {
  ERRNO_BADF, ERRNO_BUSY, ERRNO_EXIST, ERRNO_FAULT, ERRNO_INVAL, ERRNO_MFILE, ERRNO_NOSPC, ERRNO_NOTCAPABLE, ERRNO_NOTDIR, ERRNO_NOTSOCK, ERRNO_PERM,
  ERRNO_ROFS, ERRNO_SPIPE, ERRNO_XDEV, FILETYPE_DIRECTORY, FILETYPE_REGULAR_FILE, FILETYPE_UNKNOWN, OFLAGS_CREAT,
  OFLAGS_DIRECTORY, OFLAGS_TRUNC, RIGHT_FD_FILESTAT_SET_SIZE, RIGHT_FD_READ, RIGHT_FD_READDIR, RIGHT_FD_SEEK, RIGHT_FD_TELL,
  RIGHT_FD_WRITE
} from '../protocol/runtime/wasi-abi.ts'
import { ALL_RIGHTS, BUFFER, Guest } from './helpers/wasi-guest.ts'

const ROOT = 3
const encoder = new TextEncoder()
const decoder = new TextDecoder()

const file = (text: string): TreeFile => ({ type: 'file', content: encoder.encode(text) })
const dir = (entries: Record<string, TreeEntry>): TreeDirectory => ({ type: 'directory', entries })
const symlink = (target: string): TreeEntry => ({ type: 'symlink', target })
const rootMount = (tree: TreeDirectory, writable = true, filesystemBytes?: number): Guest =>
  new Guest({ mounts: [{ path: '/', tree, writable }], ...(filesystemBytes === undefined ? {} : { filesystemBytes }) })

function contentOf (tree: TreeDirectory, name: string): string {
  const entry = tree.entries[name]
  assert.equal(entry?.type, 'file', `${name} is a file`)
  return decoder.decode((entry as TreeFile).content)
}

describe('WASI host without mounts', () => {
  it('has no preopened directory and reports stdio as a non-terminal stream', () => {
    const guest = new Guest()
    assert.equal(guest.call('fd_prestat_get', ROOT, BUFFER), ERRNO_BADF)
    assert.equal(guest.call('fd_fdstat_get', 1, BUFFER), 0)
    const view = guest.view()
    // wasi-libc's isatty() wants a character device without seek or tell rights.
    assert.equal(view.getUint8(BUFFER), FILETYPE_UNKNOWN)
    const rights = view.getBigUint64(BUFFER + 8, true)
    assert.equal(rights & RIGHT_FD_WRITE, RIGHT_FD_WRITE)
    assert.equal(rights & (RIGHT_FD_SEEK | RIGHT_FD_TELL), 0n)
    assert.equal(guest.call('fd_seek', 1, 0n, 0, BUFFER), ERRNO_SPIPE)
    assert.equal(guest.open(1, 'file')[0], ERRNO_NOTDIR)
    assert.equal(guest.call('sock_shutdown', 1, 0), ERRNO_NOTSOCK)
    assert.equal(guest.call('sock_shutdown', 9, 0), ERRNO_BADF)
    assert.equal(guest.wasi.mountResults(), undefined)
  })

  it('refuses calls that would make the host hold more than their memory: too many iovecs, arrays past the end', () => {
    const guest = new Guest()
    assert.equal(guest.call('fd_write', 1, 0, 1025, BUFFER), ERRNO_INVAL)
    assert.equal(guest.call('poll_oneoff', 0, 0, 0xffffffff, BUFFER), ERRNO_FAULT)
    assert.equal(guest.call('fd_write', 1, guest.memory.buffer.byteLength - 4, 1, BUFFER), ERRNO_FAULT)
  })
})

describe('WASI host mounts', () => {
  it('a writable mount is copy-on-write over its seed and comes back as a tree', () => {
    const seed = dir({ 'keep.txt': file('keep'), 'edit.txt': file('before'), 'gone.txt': file('gone'), 'sub': dir({ 'deep.txt': file('deep') }) })
    const guest = rootMount(seed)
    const [, edit] = guest.open(ROOT, 'edit.txt', { oflags: OFLAGS_TRUNC })
    assert.deepEqual(guest.write(edit, 'after'), [0, 5])
    const [, created] = guest.open(ROOT, 'new.txt', { oflags: OFLAGS_CREAT })
    guest.write(created, 'new')
    assert.equal(guest.call('path_unlink_file', ROOT, ...guest.put('gone.txt')), 0)
    assert.equal(guest.call('path_rename', ROOT, ...guest.put('sub'), ROOT, ...guest.put('moved', 'b')), 0)
    assert.equal(guest.call('path_link', ROOT, 0, ...guest.put('keep.txt'), ROOT, ...guest.put('keep-link.txt', 'b')), 0)
    assert.equal(guest.call('path_symlink', ...guest.put('keep.txt'), ROOT, ...guest.put('keep-symlink', 'b')), 0)

    const results = guest.wasi.mountResults()
    assert.equal(results?.length, 1)
    const tree = results[0]?.tree as TreeDirectory
    assert.deepEqual(Object.keys(tree.entries).sort(), ['edit.txt', 'keep-link.txt', 'keep-symlink', 'keep.txt', 'moved', 'new.txt'])
    assert.equal(contentOf(tree, 'edit.txt'), 'after')
    assert.equal(contentOf(tree, 'new.txt'), 'new')
    assert.equal(contentOf(dir((tree.entries.moved as TreeDirectory).entries), 'deep.txt'), 'deep')
    assert.deepEqual(tree.entries['keep-symlink'], symlink('keep.txt'))
    // Unchanged files are the seed's own arrays; the seed itself never changes.
    assert.equal((tree.entries['keep.txt'] as TreeFile).content, (seed.entries['keep.txt'] as TreeFile).content)
    assert.equal((tree.entries['keep-link.txt'] as TreeFile).content, (seed.entries['keep.txt'] as TreeFile).content)
    assert.equal(contentOf(seed, 'edit.txt'), 'before')
    assert.deepEqual(Object.keys(seed.entries).sort(), ['edit.txt', 'gone.txt', 'keep.txt', 'sub'])
  })

  it('a read-only mount still reads but refuses every change with EROFS', () => {
    const guest = rootMount(dir({ 'a.txt': file('a'), 'd': dir({}) }), false)
    const [errno, fd] = guest.open(ROOT, 'a.txt', { rights: RIGHT_FD_READ })
    assert.equal(errno, 0)
    assert.deepEqual(guest.read(fd), [0, 'a'])
    assert.equal(guest.open(ROOT, 'a.txt', { rights: RIGHT_FD_WRITE })[0], ERRNO_ROFS)
    assert.equal(guest.open(ROOT, 'b.txt', { oflags: OFLAGS_CREAT })[0], ERRNO_ROFS)
    assert.equal(guest.open(ROOT, 'a.txt', { oflags: OFLAGS_TRUNC, rights: RIGHT_FD_READ })[0], ERRNO_ROFS)
    const [, sized] = guest.open(ROOT, 'a.txt', { rights: RIGHT_FD_READ | RIGHT_FD_FILESTAT_SET_SIZE })
    assert.equal(guest.call('fd_filestat_set_size', sized, 0n), ERRNO_ROFS)
    assert.equal(guest.call('path_create_directory', ROOT, ...guest.put('e')), ERRNO_ROFS)
    assert.equal(guest.call('path_remove_directory', ROOT, ...guest.put('d')), ERRNO_ROFS)
    assert.equal(guest.call('path_unlink_file', ROOT, ...guest.put('a.txt')), ERRNO_ROFS)
    assert.equal(guest.call('path_rename', ROOT, ...guest.put('a.txt'), ROOT, ...guest.put('c.txt', 'b')), ERRNO_ROFS)
    assert.equal(guest.call('path_symlink', ...guest.put('a.txt'), ROOT, ...guest.put('l', 'b')), ERRNO_ROFS)
    assert.equal(guest.call('path_filestat_set_times', ROOT, 0, ...guest.put('a.txt'), 0n, 0n, 4), ERRNO_ROFS)
    assert.equal(guest.wasi.mountResults(), undefined)
  })

  it('nested mounts are separate devices, their mount points stay put, and a parent keeps what they cover', () => {
    const mounts: Mount[] = [
      { path: '/out', tree: dir({}), writable: true },
      { path: '/', tree: dir({ 'data': dir({ 'hidden.txt': file('hidden') }), 'top.txt': file('top') }), writable: true },
      { path: '/data', tree: dir({ 'in.txt': file('in') }), writable: false }
    ]
    const guest = new Guest({ mounts })
    // Preopens in path order from fd 3.
    const names = [3, 4, 5].map(fd => {
      assert.equal(guest.call('fd_prestat_get', fd, BUFFER), 0)
      const length = guest.view().getUint32(BUFFER + 4, true)
      assert.equal(guest.call('fd_prestat_dir_name', fd, BUFFER, length), 0)
      return decoder.decode(new Uint8Array(guest.memory.buffer, BUFFER, length))
    })
    assert.deepEqual(names, ['/', '/data', '/out'])
    const [, input] = guest.open(ROOT, 'data/in.txt', { rights: RIGHT_FD_READ })
    assert.deepEqual(guest.read(input), [0, 'in'])
    assert.notEqual(guest.stat(ROOT, 'data/in.txt')[1].dev, guest.stat(ROOT, 'top.txt')[1].dev)
    assert.equal(guest.call('path_rename', ROOT, ...guest.put('top.txt'), 5, ...guest.put('top.txt', 'b')), ERRNO_XDEV)
    assert.equal(guest.call('path_link', ROOT, 0, ...guest.put('top.txt'), 5, ...guest.put('top.txt', 'b')), ERRNO_XDEV)
    assert.equal(guest.call('path_remove_directory', ROOT, ...guest.put('out')), ERRNO_BUSY)
    assert.equal(guest.call('path_rename', ROOT, ...guest.put('out'), ROOT, ...guest.put('elsewhere', 'b')), ERRNO_BUSY)
    const [, written] = guest.open(ROOT, 'out/result.txt', { oflags: OFLAGS_CREAT })
    guest.write(written, 'result')

    const results = guest.wasi.mountResults() ?? []
    assert.deepEqual(results.map(result => result.path), ['/out', '/'])
    assert.deepEqual(Object.keys(results[0]?.tree.entries ?? {}), ['result.txt'])
    const root = results[1]?.tree as TreeDirectory
    assert.deepEqual(Object.keys(root.entries).sort(), ['data', 'top.txt'])
    assert.equal(contentOf(root.entries.data as TreeDirectory, 'hidden.txt'), 'hidden')
  })

  it('refuses malformed mounts with InvalidMountError', () => {
    const cyclic = dir({})
    cyclic.entries.self = cyclic
    const bad: Array<[string, Mount[]]> = [
      ['a relative path', [{ path: 'data', tree: dir({}), writable: true }]],
      ['a trailing slash', [{ path: '/data/', tree: dir({}), writable: true }]],
      ['a .. component', [{ path: '/a/../b', tree: dir({}), writable: true }]],
      ['two mounts at one path', [{ path: '/', tree: dir({}), writable: true }, { path: '/', tree: dir({}), writable: false }]],
      ['a name with a slash', [{ path: '/', tree: dir({ 'a/b': file('x') }), writable: true }]],
      ['a name that is ..', [{ path: '/', tree: dir({ '..': file('x') }), writable: true }]],
      ['content that is not bytes', [{ path: '/', tree: dir({ a: { type: 'file', content: 'text' } as unknown as TreeFile }), writable: true }]],
      ['a cycle', [{ path: '/', tree: cyclic, writable: true }]],
      ['a mount point that is a file', [{ path: '/', tree: dir({ a: file('x') }), writable: true }, { path: '/a', tree: dir({}), writable: true }]]
    ]
    for (const [why, mounts] of bad) {
      assert.throws(() => new Guest({ mounts }), { name: 'InvalidMountError' }, why)
    }
  })
})

describe('WASI host limits', () => {
  it('bytes: ENOSPC past filesystemBytes, given back when the last name and descriptor go', () => {
    // Contents, names and symlink targets count: "seed.txt" and its 10 bytes are 18.
    const guest = rootMount(dir({ 'seed.txt': file('0123456789') }), true, 100)
    const [, a] = guest.open(ROOT, 'a', { oflags: OFLAGS_CREAT })
    assert.deepEqual(guest.write(a, 'x'.repeat(60)), [0, 60])
    const [, b] = guest.open(ROOT, 'b', { oflags: OFLAGS_CREAT, rights: RIGHT_FD_WRITE | RIGHT_FD_FILESTAT_SET_SIZE })
    // 18 + 61 + 1 = 80 used: 21 more bytes do not fit, 20 do.
    assert.deepEqual(guest.write(b, 'y'.repeat(21)), [ERRNO_NOSPC, 0])
    assert.equal(guest.call('fd_filestat_set_size', b, 21n), ERRNO_NOSPC)
    assert.deepEqual(guest.write(b, 'y'.repeat(20)), [0, 20])
    assert.equal(guest.call('path_symlink', ...guest.put('target'), ROOT, ...guest.put('l', 'b')), ERRNO_NOSPC)
    // An unlinked file keeps its bytes while a descriptor holds it; only its name is given back.
    assert.equal(guest.call('path_unlink_file', ROOT, ...guest.put('a')), 0)
    assert.deepEqual(guest.write(b, 'zz'), [ERRNO_NOSPC, 0])
    assert.equal(guest.call('fd_close', a), 0)
    assert.deepEqual(guest.write(b, 'z'.repeat(60)), [0, 60])
  })

  it('mounts that hold more than the limit fail the job before it starts', () => {
    assert.throws(() => rootMount(dir({ big: file('0123456789A') }), false, 10), { name: 'FilesystemLimitError', message: /filesystem limit/ })
  })

  it(`inodes: ENOSPC past ${MAX_INODES} files, directories and symlinks`, () => {
    const guest = rootMount(dir({}))
    let created = 0
    let errno = 0
    while (errno === 0) {
      errno = guest.call('path_create_directory', ROOT, ...guest.put(`d${created}`))
      created += errno === 0 ? 1 : 0
    }
    assert.equal(errno, ERRNO_NOSPC)
    // The root directory is one of them.
    assert.equal(created, MAX_INODES - 1)
    assert.equal(guest.call('path_remove_directory', ROOT, ...guest.put('d0')), 0)
    assert.equal(guest.call('path_create_directory', ROOT, ...guest.put('again')), 0)
  })

  it(`descriptors: EMFILE past ${MAX_OPEN_FDS}, and the lowest free number is reused`, () => {
    const guest = rootMount(dir({ 'f': file('f') }))
    const opened: number[] = []
    for (let errno = 0; errno === 0;) {
      const [result, fd] = guest.open(ROOT, 'f', { rights: RIGHT_FD_READ })
      errno = result
      if (errno === 0) {
        opened.push(fd)
      } else {
        assert.equal(errno, ERRNO_MFILE)
      }
    }
    // stdin, stdout, stderr and the preopen count too.
    assert.equal(opened.length, MAX_OPEN_FDS - 4)
    assert.equal(guest.call('fd_close', 10), 0)
    assert.deepEqual(guest.open(ROOT, 'f', { rights: RIGHT_FD_READ }), [0, 10])
  })
})

describe('WASI host lookups', () => {
  it('symlinks and .. never lead out of the directory a lookup starts from', () => {
    const guest = rootMount(dir({
      'top.txt': file('top'),
      'sub': dir({ 'up': symlink('../..'), 'abs': symlink('/top.txt'), 'ok': symlink('../top.txt') })
    }))
    assert.equal(guest.open(ROOT, 'sub/ok', { follow: true, rights: RIGHT_FD_READ })[0], 0)
    assert.equal(guest.open(ROOT, 'sub/up/top.txt', { follow: true })[0], ERRNO_NOTCAPABLE)
    assert.equal(guest.open(ROOT, 'sub/abs', { follow: true })[0], ERRNO_NOTCAPABLE)
    assert.equal(guest.open(ROOT, '/top.txt')[0], ERRNO_NOTCAPABLE)
    assert.equal(guest.open(ROOT, '../top.txt')[0], ERRNO_NOTCAPABLE)
    // From a descriptor on sub, its parent is out of reach even inside the mount.
    const [, sub] = guest.open(ROOT, 'sub', { oflags: OFLAGS_DIRECTORY, rights: ALL_RIGHTS & ~RIGHT_FD_WRITE, inheriting: ALL_RIGHTS })
    assert.equal(guest.open(sub, '../top.txt')[0], ERRNO_NOTCAPABLE)
    assert.equal(guest.open(sub, 'ok', { follow: true })[0], ERRNO_NOTCAPABLE)
    assert.equal(guest.stat(ROOT, 'sub/up', true)[0], ERRNO_NOTCAPABLE)
    // An absolute symlink could never be followed, so it is not made.
    assert.equal(guest.call('path_symlink', ...guest.put('/top.txt'), ROOT, ...guest.put('new', 'b')), ERRNO_PERM)
  })
})

describe('WASI host fd_readdir', () => {
  it('lists . and .., then entries in name order for a seed and creation order after; cookies survive removals', () => {
    const guest = rootMount(dir({ b: file('b'), a: file('a'), c: dir({}) }))
    assert.equal(guest.open(ROOT, 'z', { oflags: OFLAGS_CREAT })[0], 0)
    assert.equal(guest.call('path_create_directory', ROOT, ...guest.put('m')), 0)
    const [, root] = guest.open(ROOT, '.', { oflags: OFLAGS_DIRECTORY, rights: RIGHT_FD_READDIR | (1n << 21n) })
    const [errno, entries] = guest.readdir(root)
    assert.equal(errno, 0)
    assert.deepEqual(entries.map(entry => entry.name), ['.', '..', 'a', 'b', 'c', 'z', 'm'])
    assert.deepEqual(entries.map(entry => entry.type), [FILETYPE_DIRECTORY, FILETYPE_DIRECTORY, FILETYPE_REGULAR_FILE, FILETYPE_REGULAR_FILE, FILETYPE_DIRECTORY, FILETYPE_REGULAR_FILE, FILETYPE_DIRECTORY])
    assert.equal(guest.call('fd_filestat_get', root, BUFFER), 0)
    assert.equal(entries[0]?.ino, guest.view().getBigUint64(BUFFER + 8, true))
    // Resume after "a" once "b" is gone: nothing is skipped or repeated.
    const afterA = entries[2]?.next ?? 0n
    assert.equal(guest.call('path_unlink_file', ROOT, ...guest.put('b')), 0)
    assert.deepEqual(guest.readdir(root, afterA)[1].map(entry => entry.name), ['c', 'z', 'm'])
  })

  it('fills a short buffer to its last byte, so the caller knows to ask again', () => {
    const guest = rootMount(dir({ a: file('a') }))
    const [errno, entries, used] = guest.readdir(ROOT, 0n, 30)
    assert.equal(errno, 0)
    assert.equal(used, 30)
    assert.deepEqual(entries.map(entry => entry.name), ['.'])
    assert.deepEqual(guest.readdir(ROOT, entries[0]?.next)[1].map(entry => entry.name), ['..', 'a'])
  })

  it('creating what exists is EEXIST, whatever the kinds', () => {
    const guest = rootMount(dir({ a: file('a'), d: dir({}) }))
    assert.equal(guest.call('path_create_directory', ROOT, ...guest.put('a')), ERRNO_EXIST)
    assert.equal(guest.call('path_symlink', ...guest.put('x'), ROOT, ...guest.put('d', 'b')), ERRNO_EXIST)
  })
})

describe('WASI host determinism', () => {
  it('inode numbers and timestamps follow from the mounts and what the module did, nothing else', () => {
    const run = (): Array<[bigint, bigint]> => {
      const guest = rootMount(dir({ z: dir({ inner: file('i') }), a: file('a') }))
      guest.call('path_create_directory', ROOT, ...guest.put('made'))
      return ['.', 'a', 'z', 'z/inner', 'made'].map(path => {
        const [, stat] = guest.stat(ROOT, path)
        return [stat.ino, stat.mtim]
      })
    }
    const first = run()
    // The root, then its entries in name order, then theirs, then what the module made.
    assert.deepEqual(first.map(([ino]) => ino), [1n, 2n, 3n, 4n, 5n])
    assert.ok(first.every(([, mtim]) => mtim === CLOCK_START_NS))
    assert.deepEqual(run(), first)
  })
})

describe('WASI host poll_oneoff', () => {
  const SUBSCRIPTIONS = BUFFER
  const EVENTS = BUFFER + 0x1000

  function subscribeClock (guest: Guest, index: number, userdata: bigint, timeout: bigint, absolute = false): void {
    const view = guest.view()
    const at = SUBSCRIPTIONS + index * 48
    new Uint8Array(guest.memory.buffer, at, 48).fill(0)
    view.setBigUint64(at, userdata, true)
    view.setUint8(at + 8, 0)
    view.setUint32(at + 16, 1, true)
    view.setBigUint64(at + 24, timeout, true)
    view.setUint16(at + 40, absolute ? 1 : 0, true)
  }

  function subscribeRead (guest: Guest, index: number, userdata: bigint, fd: number): void {
    const at = SUBSCRIPTIONS + index * 48
    new Uint8Array(guest.memory.buffer, at, 48).fill(0)
    guest.view().setBigUint64(at, userdata, true)
    guest.view().setUint8(at + 8, 1)
    guest.view().setUint32(at + 16, fd, true)
  }

  function events (guest: Guest, count: number): Array<{ userdata: bigint, error: number, type: number, nbytes: bigint }> {
    assert.equal(guest.call('poll_oneoff', SUBSCRIPTIONS, EVENTS, count, BUFFER - 8), 0)
    const view = guest.view()
    return Array.from({ length: view.getUint32(BUFFER - 8, true) }, (_, i) => ({
      userdata: view.getBigUint64(EVENTS + i * 32, true),
      error: view.getUint16(EVENTS + i * 32 + 8, true),
      type: view.getUint8(EVENTS + i * 32 + 10),
      nbytes: view.getBigUint64(EVENTS + i * 32 + 16, true)
    }))
  }

  it('a clock subscription sleeps on the virtual clock: at once, and to the same instant on every run', () => {
    const sleep = (): bigint[] => {
      const guest = new Guest()
      const before = guest.now()
      subscribeClock(guest, 0, 7n, 5_000_000_000n)
      assert.deepEqual(events(guest, 1), [{ userdata: 7n, error: 0, type: 0, nbytes: 0n }])
      return [before, guest.now()]
    }
    const started = performance.now()
    const [before, after] = sleep()
    assert.ok(performance.now() - started < 1000, 'a 5 s sleep returns at once')
    assert.equal(before, CLOCK_START_NS)
    assert.equal(after, CLOCK_START_NS + CLOCK_STEP_NS + 5_000_000_000n)
    assert.deepEqual(sleep(), [before, after])
  })

  it('the earliest deadline wins; a deadline already past fires without moving the clock', () => {
    const guest = new Guest()
    subscribeClock(guest, 0, 1n, 3_000_000_000n)
    subscribeClock(guest, 1, 2n, 1_000_000_000n)
    assert.deepEqual(events(guest, 2).map(event => event.userdata), [2n])
    const now = guest.now()
    subscribeClock(guest, 0, 3n, CLOCK_START_NS, true)
    assert.deepEqual(events(guest, 1).map(event => event.userdata), [3n])
    assert.equal(guest.now(), now + CLOCK_STEP_NS)
  })

  it('a descriptor is always ready, so the poll returns at once with it alone', () => {
    const guest = new Guest({ stdin: encoder.encode('input') })
    const before = guest.now()
    subscribeClock(guest, 0, 1n, 5_000_000_000n)
    subscribeRead(guest, 1, 2n, 0)
    subscribeRead(guest, 2, 3n, 42)
    assert.deepEqual(events(guest, 3), [
      { userdata: 2n, error: 0, type: 1, nbytes: 5n },
      { userdata: 3n, error: ERRNO_BADF, type: 1, nbytes: 0n }
    ])
    assert.equal(guest.now(), before + CLOCK_STEP_NS)
  })
})
