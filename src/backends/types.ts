/**
 * The interface a Signal talks to (ophyd-async's SignalBackend). Devices see only this interface; EPICS CA, the
 * PandA control port and the in-memory backends implement it. Timeouts are in milliseconds.
 */
import type { DataKey, Dtype, Reading } from '../devices/index.js'

/** What a signal carries: its event-model dtype plus the metadata that goes into its DataKey. */
export interface SignalMetadata {
  readonly shape?: number[]
  readonly units?: string
  readonly precision?: number
  readonly choices?: string[]
  readonly limits?: DataKey['limits']
  readonly dtypeNumpy?: string
}

export type ReadingCallback<T> = (reading: Reading<T>) => void

export interface SignalBackend<T> {
  readonly dtype: Dtype
  readonly metadata: SignalMetadata
  /** Where the value comes from, e.g. `ca://XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr.RBV` or `soft://rot_motor-velocity`. */
  source (name: string): string
  connect (timeoutMs: number): Promise<void>
  /** Write `value` (undefined: the "executable" write of a SignalX); with `wait`, resolve when the write completed. */
  put (value: T | undefined, wait: boolean): Promise<void>
  getDatakey (source: string): Promise<DataKey>
  getReading (): Promise<Reading<T>>
  getValue (): Promise<T>
  getSetpoint (): Promise<T>
  /** Monitor: `cb` gets the current reading soon after, and every change; undefined stops monitoring. */
  setCallback (cb: ReadingCallback<T> | undefined): void
}

/** The value a signal of `dtype` holds before anything is written. */
export function defaultValueFor (dtype: Dtype): unknown {
  switch (dtype) {
    case 'number': case 'integer': return 0
    case 'string': return ''
    case 'boolean': return false
    case 'array': return []
  }
}

/** The DataKey of a signal (one function, so every backend describes the same way). */
export function makeDatakey (dtype: Dtype, metadata: SignalMetadata, source: string, value: unknown): DataKey {
  const shape = metadata.shape ?? (Array.isArray(value) ? [value.length] : [])
  return {
    dtype,
    shape,
    source,
    ...(metadata.dtypeNumpy === undefined ? {} : { dtype_numpy: metadata.dtypeNumpy }),
    ...(metadata.units === undefined ? {} : { units: metadata.units }),
    ...(metadata.precision === undefined ? {} : { precision: metadata.precision }),
    ...(metadata.choices === undefined ? {} : { choices: [...metadata.choices] }),
    ...(metadata.limits === undefined ? {} : { limits: metadata.limits })
  }
}
