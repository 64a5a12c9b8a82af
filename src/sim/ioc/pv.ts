/**
 * What the simulated IOC serves: process variables. The CA server (server.ts) knows only this interface; records,
 * the motor record and the camera (records.ts, motor.ts, camera.ts) implement it. One ServedPv per `RECORD.FIELD`
 * name; a record's bare name is its `.VAL`.
 */
import type { DbrBase, DbrMetadata, DbrValue, EpicsTime } from '../../parsers/index.js'

/** Alarm severities (EPICS menuAlarmSevr). */
export const Severity = { NO_ALARM: 0, MINOR: 1, MAJOR: 2, INVALID: 3 } as const
/** A few alarm status codes (EPICS menuAlarmStat) the simulated records raise. */
export const AlarmStatus = { NO_ALARM: 0, READ: 1, WRITE: 2, HIHI: 3, HIGH: 4, LOLO: 5, LOW: 6, STATE: 7, UDF: 17 } as const

/** A PV's value at one instant. `value` is in the PV's native base; its length is the current element count. */
export interface PvState {
  readonly value: DbrValue
  readonly status: number
  readonly severity: number
  readonly stamp: EpicsTime
}

/** Called on every change; `mask` holds the DbeMask bits (VALUE, LOG, ALARM, PROPERTY) of what changed. */
export type PvListener = (state: PvState, mask: number) => void

export interface ServedPv {
  /** Full name, e.g. `XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr.RBV`. */
  readonly name: string
  readonly base: DbrBase
  /** Most elements the PV can hold (NELM); 1 for scalars. */
  readonly maxCount: number
  readonly writable: boolean
  get: () => PvState
  /** GR/CTRL metadata: units, precision, limits, enum strings. */
  metadata: () => DbrMetadata
  /**
   * A client's write, already converted to `base`. Resolves when processing has completed (what a WRITE_NOTIFY
   * reply waits for: a motor's move, a camera's acquisition); rejects with an Error whose message the server logs.
   */
  put: (value: DbrValue) => Promise<void>
  /** Start listening; returns the function that stops. */
  subscribe: (listener: PvListener) => () => void
}

/** A set of PVs the server answers searches for. */
export interface PvProvider {
  find: (name: string) => ServedPv | undefined
  names: () => string[]
}

/** Time for the simulated records: wall-clock milliseconds and one-shot timers (a fake in tests). */
export interface SimClock {
  nowMs: () => number
  setTimer: (fn: () => void, ms: number) => () => void
}

export const realClock: SimClock = {
  nowMs: () => Date.now(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms)
    return () => clearTimeout(t)
  }
}
