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

export function pollCalls (host: WasiHost): Record<string, Syscall> {
  const { memory, fds, stdio, clock } = host

  return {
    poll_oneoff: (subscriptions: number, out: number, count: number, eventCount: number) => {
      const total = count >>> 0
      if (total === 0) {
        fail(ERRNO_INVAL)
      }
      // Both arrays must be in memory before anything is read or written (else EFAULT).
      memory.bytes(subscriptions, total * SUBSCRIPTION_SIZE)
      memory.bytes(out, total * EVENT_SIZE)
      const at = (i: number): number => (subscriptions >>> 0) + i * SUBSCRIPTION_SIZE
      const deadline = (sub: number, now: bigint): bigint => {
        const timeout = memory.u64(sub + 24)
        return (memory.u16(sub + 40) & SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME) !== 0 ? timeout : now + timeout
      }

      // First pass: a descriptor or a bad clock answers at once; otherwise the earliest deadline is a sleep.
      const start = clock.now()
      let immediate = false
      let earliest: bigint | undefined
      for (let i = 0; i < total; i++) {
        const type = memory.u8(at(i) + 8)
        if (type === EVENTTYPE_FD_READ || type === EVENTTYPE_FD_WRITE || (type === EVENTTYPE_CLOCK && memory.u32(at(i) + 16) > CLOCK_ID_MAX)) {
          immediate = true
        } else if (type === EVENTTYPE_CLOCK) {
          const due = deadline(at(i), start)
          earliest = earliest === undefined || due < earliest ? due : earliest
        } else {
          fail(ERRNO_INVAL)
        }
      }
      if (!immediate && earliest !== undefined) {
        clock.advanceTo(earliest)
      }

      // Second pass: write the events, in subscription order, straight into memory.
      const now = clock.now()
      let written = 0
      const emit = (userdata: bigint, type: number, error: number, nbytes = 0n, flags = 0): void => {
        const event = (out >>> 0) + written++ * EVENT_SIZE
        memory.bytes(event, EVENT_SIZE).fill(0)
        memory.setU64(event, userdata)
        memory.setU16(event + 8, error)
        memory.setU8(event + 10, type)
        memory.setU64(event + 16, nbytes)
        memory.setU16(event + 24, flags)
      }
      for (let i = 0; i < total; i++) {
        const sub = at(i)
        const userdata = memory.u64(sub)
        const type = memory.u8(sub + 8)
        if (type === EVENTTYPE_CLOCK) {
          if (memory.u32(sub + 16) > CLOCK_ID_MAX) {
            emit(userdata, type, ERRNO_INVAL)
          } else if (deadline(sub, start) <= now) {
            emit(userdata, type, ERRNO_SUCCESS)
          }
          continue
        }
        try {
          const descriptor = fds.get(memory.u32(sub + 16))
          if (type === EVENTTYPE_FD_READ && descriptor.kind === 'stdin') {
            // All of stdin read: the writer is gone, as a pipe reports it.
            emit(userdata, type, ERRNO_SUCCESS, BigInt(stdio.unread), stdio.unread === 0 ? EVENTRWFLAGS_FD_READWRITE_HANGUP : 0)
          } else if (type === EVENTTYPE_FD_READ && descriptor.kind === 'file') {
            emit(userdata, type, ERRNO_SUCCESS, BigInt(Math.max(0, descriptor.node.size - descriptor.position)))
          } else {
            emit(userdata, type, ERRNO_SUCCESS)
          }
        } catch (err) {
          if (!(err instanceof Errno)) {
            throw err
          }
          emit(userdata, type, err.code)
        }
      }
      memory.setU32(eventCount, written)
      return 0
    }
  }
}
