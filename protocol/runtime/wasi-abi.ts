/**
 * The numbers of WASI preview1 (wasi_snapshot_preview1.witx): errno values,
 * rights, file types and flags, and the byte layout of the structs the host
 * writes into guest memory. Names follow the witx, upper-cased.
 */

export const ERRNO_SUCCESS = 0
export const ERRNO_BADF = 8
export const ERRNO_BUSY = 10
export const ERRNO_EXIST = 20
export const ERRNO_FAULT = 21
export const ERRNO_FBIG = 22
export const ERRNO_ILSEQ = 25
export const ERRNO_INVAL = 28
export const ERRNO_ISDIR = 31
export const ERRNO_LOOP = 32
export const ERRNO_MFILE = 33
export const ERRNO_NAMETOOLONG = 37
export const ERRNO_NOENT = 44
export const ERRNO_NOSPC = 51
export const ERRNO_NOSYS = 52
export const ERRNO_NOTDIR = 54
export const ERRNO_NOTEMPTY = 55
export const ERRNO_NOTSOCK = 57
export const ERRNO_PERM = 63
export const ERRNO_ROFS = 69
export const ERRNO_SPIPE = 70
export const ERRNO_XDEV = 75
export const ERRNO_NOTCAPABLE = 76

export const FILETYPE_UNKNOWN = 0
export const FILETYPE_DIRECTORY = 3
export const FILETYPE_REGULAR_FILE = 4
export const FILETYPE_SYMBOLIC_LINK = 7

export const RIGHT_FD_DATASYNC = 1n << 0n
export const RIGHT_FD_READ = 1n << 1n
export const RIGHT_FD_SEEK = 1n << 2n
export const RIGHT_FD_FDSTAT_SET_FLAGS = 1n << 3n
export const RIGHT_FD_SYNC = 1n << 4n
export const RIGHT_FD_TELL = 1n << 5n
export const RIGHT_FD_WRITE = 1n << 6n
export const RIGHT_FD_ADVISE = 1n << 7n
export const RIGHT_FD_ALLOCATE = 1n << 8n
export const RIGHT_PATH_CREATE_DIRECTORY = 1n << 9n
export const RIGHT_PATH_CREATE_FILE = 1n << 10n
export const RIGHT_PATH_LINK_SOURCE = 1n << 11n
export const RIGHT_PATH_LINK_TARGET = 1n << 12n
export const RIGHT_PATH_OPEN = 1n << 13n
export const RIGHT_FD_READDIR = 1n << 14n
export const RIGHT_PATH_READLINK = 1n << 15n
export const RIGHT_PATH_RENAME_SOURCE = 1n << 16n
export const RIGHT_PATH_RENAME_TARGET = 1n << 17n
export const RIGHT_PATH_FILESTAT_GET = 1n << 18n
export const RIGHT_PATH_FILESTAT_SET_SIZE = 1n << 19n
export const RIGHT_PATH_FILESTAT_SET_TIMES = 1n << 20n
export const RIGHT_FD_FILESTAT_GET = 1n << 21n
export const RIGHT_FD_FILESTAT_SET_SIZE = 1n << 22n
export const RIGHT_FD_FILESTAT_SET_TIMES = 1n << 23n
export const RIGHT_PATH_SYMLINK = 1n << 24n
export const RIGHT_PATH_REMOVE_DIRECTORY = 1n << 25n
export const RIGHT_PATH_UNLINK_FILE = 1n << 26n
export const RIGHT_POLL_FD_READWRITE = 1n << 27n

/** Everything a regular file can do. */
export const FILE_RIGHTS = RIGHT_FD_DATASYNC | RIGHT_FD_READ | RIGHT_FD_SEEK | RIGHT_FD_FDSTAT_SET_FLAGS |
  RIGHT_FD_SYNC | RIGHT_FD_TELL | RIGHT_FD_WRITE | RIGHT_FD_ADVISE | RIGHT_FD_ALLOCATE |
  RIGHT_FD_FILESTAT_GET | RIGHT_FD_FILESTAT_SET_SIZE | RIGHT_FD_FILESTAT_SET_TIMES | RIGHT_POLL_FD_READWRITE

/** Everything a directory can do: no reading, writing or seeking its bytes. */
export const DIRECTORY_RIGHTS = RIGHT_FD_DATASYNC | RIGHT_FD_FDSTAT_SET_FLAGS | RIGHT_FD_SYNC | RIGHT_FD_ADVISE |
  RIGHT_PATH_CREATE_DIRECTORY | RIGHT_PATH_CREATE_FILE | RIGHT_PATH_LINK_SOURCE | RIGHT_PATH_LINK_TARGET |
  RIGHT_PATH_OPEN | RIGHT_FD_READDIR | RIGHT_PATH_READLINK | RIGHT_PATH_RENAME_SOURCE | RIGHT_PATH_RENAME_TARGET |
  RIGHT_PATH_FILESTAT_GET | RIGHT_PATH_FILESTAT_SET_SIZE | RIGHT_PATH_FILESTAT_SET_TIMES | RIGHT_FD_FILESTAT_GET |
  RIGHT_FD_FILESTAT_SET_TIMES | RIGHT_PATH_SYMLINK | RIGHT_PATH_REMOVE_DIRECTORY | RIGHT_PATH_UNLINK_FILE |
  RIGHT_POLL_FD_READWRITE

/** stdin, stdout and stderr: a stream, so no seek or tell. */
export const STREAM_RIGHTS = RIGHT_FD_FDSTAT_SET_FLAGS | RIGHT_FD_FILESTAT_GET | RIGHT_POLL_FD_READWRITE

export const OFLAGS_CREAT = 1
export const OFLAGS_DIRECTORY = 2
export const OFLAGS_EXCL = 4
export const OFLAGS_TRUNC = 8

export const FDFLAGS_APPEND = 1
/** append, dsync, nonblock, rsync, sync: all accepted and kept; a memory filesystem is always in sync. */
export const FDFLAGS_ALL = 0x1f

export const LOOKUPFLAGS_SYMLINK_FOLLOW = 1

export const FSTFLAGS_ATIM = 1
export const FSTFLAGS_ATIM_NOW = 2
export const FSTFLAGS_MTIM = 4
export const FSTFLAGS_MTIM_NOW = 8

export const WHENCE_SET = 0
export const WHENCE_CUR = 1
export const WHENCE_END = 2

/** The last valid advice value (noreuse). */
export const ADVICE_MAX = 5

export const PREOPENTYPE_DIR = 0

export const EVENTTYPE_CLOCK = 0
export const EVENTTYPE_FD_READ = 1
export const EVENTTYPE_FD_WRITE = 2
export const EVENTRWFLAGS_FD_READWRITE_HANGUP = 1
export const SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME = 1

/** Clock ids are 0…3: realtime, monotonic, process and thread CPU time. */
export const CLOCK_ID_MAX = 3

/** Struct sizes and field offsets, all little-endian. */
export const FDSTAT_SIZE = 24
export const FILESTAT_SIZE = 64
export const DIRENT_SIZE = 24
export const SUBSCRIPTION_SIZE = 48
export const EVENT_SIZE = 32

/**
 * A preview1 errno thrown from deep inside the host (path lookup, limits) and
 * returned to the module by the syscall wrapper. Not an Error: a failed
 * lookup is routine (libraries probe paths), and one shared instance per code
 * costs no allocation and no stack capture.
 */
export class Errno {
  readonly code: number

  constructor (code: number) {
    this.code = code
  }
}

const errnos = new Map<number, Errno>()

/** Throws the errno `code`; the syscall wrapper turns it into the call's result. */
export function fail (code: number): never {
  let errno = errnos.get(code)
  if (errno === undefined) {
    errno = new Errno(code)
    errnos.set(code, errno)
  }
  throw errno
}
