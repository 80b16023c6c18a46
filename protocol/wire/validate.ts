import { CID } from 'multiformats/cid'
import { MalformedMessageError } from '../errors.ts'

/**
 * Small checks for decoded CBOR. Each throws MalformedMessageError naming the
 * offending field, so a bad message is reported precisely and never reaches
 * the code that trusts its shape.
 */

/**
 * An untrusted value as an error message can show it: `String()` of a map
 * whose own `toString` key is not a function throws, and a long string
 * would flood the message.
 */
export function shown (value: unknown): string {
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value)
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value == null) {
    return String(value)
  }
  return Array.isArray(value) ? 'an array' : value instanceof Uint8Array ? 'bytes' : 'a map'
}

export function asRecord (value: unknown, field: string): Record<string, unknown> {
  if (value == null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array || CID.asCID(value) != null) {
    throw new MalformedMessageError(`${field} must be a map`)
  }
  return value as Record<string, unknown>
}

export function onlyKeys (record: Record<string, unknown>, allowed: readonly string[], field: string): void {
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) {
      throw new MalformedMessageError(`${field} has an unknown field "${key}"`)
    }
  }
}

export function asInteger (value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new MalformedMessageError(`${field} must be an integer from ${min} to ${max}`)
  }
  return value
}

export function asString (value: unknown, field: string, maxLength: number): string {
  if (typeof value !== 'string' || value.length > maxLength) {
    throw new MalformedMessageError(`${field} must be a string of at most ${maxLength} characters`)
  }
  return value
}

export function asBytes (value: unknown, field: string, maxLength: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength > maxLength) {
    throw new MalformedMessageError(`${field} must be bytes, at most ${maxLength} long`)
  }
  return value
}

export function asCid (value: unknown, field: string): CID {
  const cid = CID.asCID(value)
  if (cid == null) {
    throw new MalformedMessageError(`${field} must be a CID`)
  }
  return cid
}

export function asBoolean (value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') {
    throw new MalformedMessageError(`${field} must be true or false`)
  }
  return value
}

export function asArray (value: unknown, field: string, maxLength: number): unknown[] {
  if (!Array.isArray(value) || value.length > maxLength) {
    throw new MalformedMessageError(`${field} must be a list of at most ${maxLength} items`)
  }
  return value
}

export function oneOf<T extends string> (value: unknown, field: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new MalformedMessageError(`${field} must be one of ${allowed.join(', ')}`)
  }
  return value as T
}

/** A duration in milliseconds: finite and not negative, fractions allowed. */
export function asDuration (value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new MalformedMessageError(`${field} must be a non-negative number of milliseconds`)
  }
  return value
}
