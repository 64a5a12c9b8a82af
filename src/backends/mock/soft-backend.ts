import type { Dtype, Reading } from '../../devices/index.js'
import { defaultValueFor, makeDatakey, type ReadingCallback, type SignalBackend, type SignalMetadata } from '../types.js'

/** Seconds since the epoch, as event-model timestamps are. */
function timestampNow (): number {
  return Date.now() / 1000
}

/**
 * An in-memory signal backend (ophyd-async's SoftSignalBackend): the store behind soft signals and behind mock mode.
 * A put sets the value at once and notifies the monitor.
 */
export class SoftSignalBackend<T> implements SignalBackend<T> {
  readonly dtype: Dtype
  readonly metadata: SignalMetadata
  private reading: Reading<T>
  private callback: ReadingCallback<T> | undefined

  constructor (dtype: Dtype, initialValue?: T, metadata: SignalMetadata = {}) {
    this.dtype = dtype
    this.metadata = metadata
    const value = initialValue === undefined ? defaultValueFor(dtype) as T : initialValue
    this.reading = { value, timestamp: timestampNow(), alarmSeverity: 0 }
  }

  source (name: string): string { return `soft://${name}` }
  async connect (): Promise<void> {}

  async put (value: T | undefined, _wait: boolean): Promise<void> {
    this.setValue(value === undefined ? this.reading.value : value)
  }

  /** Set the value now and notify the monitor (no put is recorded). */
  setValue (value: T): void {
    this.reading = { value, timestamp: timestampNow(), alarmSeverity: 0 }
    this.callback?.(this.reading)
  }

  currentReading (): Reading<T> { return this.reading }

  async getDatakey (source: string) { return makeDatakey(this.dtype, this.metadata, source, this.reading.value) }
  async getReading (): Promise<Reading<T>> { return this.reading }
  async getValue (): Promise<T> { return this.reading.value }
  async getSetpoint (): Promise<T> { return this.reading.value }

  setCallback (cb: ReadingCallback<T> | undefined): void {
    this.callback = cb
    if (cb !== undefined) cb(this.reading)
  }
}
