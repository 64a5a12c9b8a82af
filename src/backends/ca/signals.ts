/**
 * Signals over Channel Access (ophyd-async's epics_signal_r / _rw / _w / _x). Each makes a CaSignalBackend; nothing
 * touches libca until the signal connects, so a device built from these connects in mock mode without libca.
 */
import { SignalR, SignalRW, SignalW, SignalX } from '../../devices/index.js'
import { CaSignalBackend, type CaSignalOptions } from './backend.js'

export interface CaSignalFactoryOptions extends CaSignalOptions {
  /** The signal's name (usually set later by the owning device). */
  readonly name?: string
}

/** A read-only signal of `pv`. */
export function caSignalR<T> (pv: string, options: CaSignalFactoryOptions = {}): SignalR<T> {
  return new SignalR<T>(new CaSignalBackend<T>(pv, options), options.name)
}

/** A read-write signal: reads `pv`, writes `options.writePv` (default `pv`). */
export function caSignalRW<T> (pv: string, options: CaSignalFactoryOptions = {}): SignalRW<T> {
  return new SignalRW<T>(new CaSignalBackend<T>(pv, options), options.name)
}

/** A write-only signal of `pv`. */
export function caSignalW<T> (pv: string, options: CaSignalFactoryOptions = {}): SignalW<T> {
  return new SignalW<T>(new CaSignalBackend<T>(pv, options), options.name)
}

/** An executable signal: trigger() writes the value `pv` held at connect (e.g. a motor's .STOP, a busy record). */
export function caSignalX (pv: string, options: CaSignalFactoryOptions = {}): SignalX {
  return new SignalX(new CaSignalBackend<unknown>(pv, options), options.name)
}
