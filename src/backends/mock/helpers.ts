import { ErrorCode, FlyScanError } from '../../errors.js'
import type { SignalBackend } from '../types.js'
import { MockSignalBackend, type PutCallback } from './mock-backend.js'

/** Anything with a name and a backend: a Signal. */
export interface HasBackend<T> {
  readonly name: string
  readonly backend: SignalBackend<T>
}

function mockOf<T> (signal: HasBackend<T>): MockSignalBackend<T> {
  const backend = signal.backend
  if (!(backend instanceof MockSignalBackend)) {
    throw new FlyScanError(ErrorCode.BAD_INPUT,
      `signal '${signal.name}' is not in mock mode (its source is ${backend.source(signal.name)}): connect its device with { mock: true }`)
  }
  return backend
}

/** Set a mocked signal's value as if the hardware changed it (monitors fire; no put is recorded). */
export function setMockValue<T> (signal: HasBackend<T>, value: T): void {
  mockOf(signal).setValue(value)
}

/** Run `cb` on every put to a mocked signal (before the value is stored); returns the function that removes it. */
export function callbackOnMockPut<T> (signal: HasBackend<T>, cb: PutCallback<T>): () => void {
  return mockOf(signal).addPutCallback(cb)
}

/** Every put made to a mocked signal, oldest first. */
export function getMockPutCalls<T> (signal: HasBackend<T>): ReadonlyArray<{ value: T | undefined, wait: boolean }> {
  return mockOf(signal).putCalls
}

/** Hold (false) or release (true) puts to a mocked signal. */
export function setMockPutProceeds<T> (signal: HasBackend<T>, proceeds: boolean): void {
  mockOf(signal).setPutProceeds(proceeds)
}
