/**
 * The only time a job sees. A real clock would make output depend on the
 * machine and break re-execution; a frozen one would hang programs that wait
 * for time to pass. So every job starts at the same instant, each reading
 * moves it 1 µs forward, and sleeping (poll_oneoff on a clock) jumps it to
 * the deadline at once. All four preview1 clocks read it.
 */

/** 2024-01-01T00:00:00Z in nanoseconds: the time every job starts at. */
export const CLOCK_START_NS = 1_704_067_200_000_000_000n
/** What a reading advances the clock by, and the resolution clock_res_get reports. */
export const CLOCK_STEP_NS = 1000n

export class VirtualClock {
  #ns = CLOCK_START_NS

  /** The current time without advancing it: for timestamps the filesystem records. */
  now (): bigint {
    return this.#ns
  }

  /** The current time, then one step on, so successive readings strictly increase. */
  read (): bigint {
    const ns = this.#ns
    this.#ns += CLOCK_STEP_NS
    return ns
  }

  /** A sleep until `deadline`: the clock jumps there if it is ahead. */
  advanceTo (deadline: bigint): void {
    if (deadline > this.#ns) {
      this.#ns = deadline
    }
  }
}
