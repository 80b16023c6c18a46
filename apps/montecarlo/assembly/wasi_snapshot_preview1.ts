// The WASI preview1 functions this module uses. AssemblyScript imports a
// file's declared functions from a module named after the file, so these
// come from "wasi_snapshot_preview1" without @external decorators.

export declare function fd_read (fd: i32, iovs: usize, iovsLength: i32, read: usize): i32
export declare function fd_write (fd: i32, iovs: usize, iovsLength: i32, written: usize): i32
export declare function proc_exit (code: i32): void
