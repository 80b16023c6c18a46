/**
 * A smoothed average per key (an exponential moving average: each new
 * sample weighs `weight`), for the keys used most recently: past `max`
 * keys, the least recently updated is dropped. Module times on both sides
 * of the job protocol keep one.
 */
export class RecentAverages {
  readonly #values = new Map<string, number>()
  readonly #max: number
  readonly #weight: number

  constructor (max: number, weight: number) {
    this.#max = max
    this.#weight = weight
  }

  get (key: string): number | undefined {
    return this.#values.get(key)
  }

  add (key: string, sample: number): void {
    const known = this.#values.get(key)
    this.#values.delete(key) // most recently updated last, the oldest dropped first
    this.#values.set(key, known == null ? sample : known * (1 - this.#weight) + sample * this.#weight)
    if (this.#values.size > this.#max) {
      this.#values.delete(this.#values.keys().next().value as string)
    }
  }
}
