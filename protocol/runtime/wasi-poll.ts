/**
 * poll_oneoff on the job's terms: every descriptor is always ready (stdin is
 * all there, files are memory, stdout takes what it gets), and nothing else
 * can happen while the module waits, so a poll with only clocks is a sleep
 * that moves the virtual clock to the earliest deadline and returns at once.
 * The same subscriptions give the same events and the same time everywhere.
 */
import {
  CLOCK_ID_MAX, ERRNO_INVAL, ERRNO_SUCCESS, EVENT_SIZE, EVENTRWFLAGS_FD_READWRITE_HANGUP, EVENTTYPE_CLOCK,
  EVENTTYPE_FD_READ, EVENTTYPE_FD_WRITE, Errno, SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME, SUBSCRIPTION_SIZE, fail
} from './wasi-abi.ts'
import type { Syscall, WasiHost } from './wasi-host.ts'

interface Event {
  userdata: bigint
  error: number
  type: number
  /** Bytes ready to read (fd_read); 0 for the rest. */
  nbytes: bigint
  flags: number
}

export function pollCalls (host: WasiHost): Record<string, Syscall> {
  const { memory, fds, stdio, clock } = host

  /** An fd subscription's event: ready at once, or the descriptor's error. */
  const fdEvent = (userdata: bigint, type: number, fd: number): Event => {
    const event: Event = { userdata, error: ERRNO_SUCCESS, type, nbytes: 0n, flags: 0 }
    try {
      const descriptor = fds.get(fd)
      if (type === EVENTTYPE_FD_READ && descriptor.kind === 'stdin') {
        event.nbytes = BigInt(stdio.unread)
        // All of stdin was read: the writer is gone, as a pipe reports it.
        event.flags = stdio.unread === 0 ? EVENTRWFLAGS_FD_READWRITE_HANGUP : 0
      } else if (type === EVENTTYPE_FD_READ && descriptor.kind === 'file') {
        event.nbytes = BigInt(Math.max(0, descriptor.node.size - descriptor.position))
      }
    } catch (err) {
      if (!(err instanceof Errno)) {
        throw err
      }
      event.error = err.code
    }
    return event
  }

  return {
    poll_oneoff: (subscriptions: number, out: number, count: number, eventCount: number) => {
      if (count >>> 0 === 0) {
        fail(ERRNO_INVAL)
      }
      const now = clock.now()
      const ready: Event[] = []
      const clocks: Array<{ userdata: bigint, deadline: bigint }> = []
      for (let i = 0; i < count >>> 0; i++) {
        const sub = (subscriptions >>> 0) + i * SUBSCRIPTION_SIZE
        const userdata = memory.u64(sub)
        const type = memory.u8(sub + 8)
        if (type === EVENTTYPE_CLOCK) {
          if (memory.u32(sub + 16) > CLOCK_ID_MAX) {
            ready.push({ userdata, error: ERRNO_INVAL, type, nbytes: 0n, flags: 0 })
            continue
          }
          const timeout = memory.u64(sub + 24)
          const absolute = (memory.u16(sub + 40) & SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME) !== 0
          clocks.push({ userdata, deadline: absolute ? timeout : now + timeout })
        } else if (type === EVENTTYPE_FD_READ || type === EVENTTYPE_FD_WRITE) {
          ready.push(fdEvent(userdata, type, memory.u32(sub + 16)))
        } else {
          fail(ERRNO_INVAL)
        }
      }
      // Nothing ready: sleep until the first deadline, which is then due.
      if (ready.length === 0 && clocks.length > 0) {
        clock.advanceTo(clocks.reduce((earliest, { deadline }) => deadline < earliest ? deadline : earliest, clocks[0]?.deadline ?? now))
      }
      const time = clock.now()
      for (const { userdata, deadline } of clocks) {
        if (deadline <= time) {
          ready.push({ userdata, error: ERRNO_SUCCESS, type: EVENTTYPE_CLOCK, nbytes: 0n, flags: 0 })
        }
      }
      ready.forEach((event, i) => {
        const at = (out >>> 0) + i * EVENT_SIZE
        memory.bytes(at, EVENT_SIZE).fill(0)
        memory.setU64(at, event.userdata)
        memory.setU16(at + 8, event.error)
        memory.setU8(at + 10, event.type)
        memory.setU64(at + 16, event.nbytes)
        memory.setU16(at + 24, event.flags)
      })
      memory.setU32(eventCount, ready.length)
      return 0
    }
  }
}
