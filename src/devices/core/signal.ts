/**
 * Signals (ophyd-async's SignalR, SignalRW, SignalW, SignalX): devices with one value, over a SignalBackend.
 * `read()` gives `{ [name]: Reading }`. Timeouts are milliseconds.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import { MockSignalBackend, SoftSignalBackend, type SignalBackend, type SignalMetadata } from '../../backends/index.js'
import { type ConnectFailure, type ConnectOptions, Device } from './device.js'
import {
  AsyncStatus, DEFAULT_TIMEOUT_MS, type DataKey, type Dtype, type Location, type Reading, type SetOptions, type Unsubscribe
} from './protocols.js'

/** Reject with TIMEOUT naming `what` and the bound if `promise` takes longer than `ms`. */
export async function withTimeout<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new FlyScanError(ErrorCode.TIMEOUT, `${what} did not finish within ${ms} ms`, { details: { timeoutMs: ms } }))
    }, ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

export class Signal<T> extends Device {
  #backend: SignalBackend<T>
  #connected: 'no' | 'real' | 'mock' = 'no'

  constructor (backend: SignalBackend<T>, name = '') {
    super(name)
    this.#backend = backend
  }

  get backend (): SignalBackend<T> { return this.#backend }
  get source (): string { return this.#backend.source(this.name) }

  override async connectParts (options: Required<ConnectOptions>): Promise<ConnectFailure[]> {
    if (options.mock) {
      if (!(this.#backend instanceof MockSignalBackend)) this.#backend = new MockSignalBackend(this.#backend)
      this.#connected = 'mock'
      return []
    }
    if (this.#backend instanceof MockSignalBackend) {
      return [{ name: this.name, cause: new FlyScanError(ErrorCode.BAD_INPUT, 'connected in mock mode; it cannot be connected for real afterwards') }]
    }
    try {
      await withTimeout(this.#backend.connect(options.timeout), options.timeout, `connecting ${this.source}`)
      this.#connected = 'real'
      return []
    } catch (err) {
      return [{ name: this.name, cause: err }]
    }
  }

  get connected (): boolean { return this.#connected !== 'no' }
}

export class SignalR<T> extends Signal<T> {
  readonly #listeners = new Set<(reading: Reading<T>) => void>()
  #last: Reading<T> | undefined

  async read (): Promise<Record<string, Reading<T>>> {
    return { [this.name]: await this.backend.getReading() }
  }

  async describe (): Promise<Record<string, DataKey>> {
    return { [this.name]: await this.backend.getDatakey(this.source) }
  }

  async getValue (): Promise<T> { return await this.backend.getValue() }

  /** `cb` gets `{ [name]: Reading }` now and on every change. */
  subscribe (cb: (reading: Record<string, Reading<T>>) => void): Unsubscribe {
    return this.listen((r) => { cb({ [this.name]: r }) })
  }

  /** `cb` gets the value now and on every change. */
  subscribeValue (cb: (value: T) => void): Unsubscribe {
    return this.listen((r) => { cb(r.value) })
  }

  private listen (listener: (reading: Reading<T>) => void): Unsubscribe {
    this.#listeners.add(listener)
    if (this.#listeners.size === 1) {
      this.backend.setCallback((reading) => {
        this.#last = reading
        for (const l of [...this.#listeners]) l(reading)
      })
    } else if (this.#last !== undefined) {
      listener(this.#last)
    }
    return () => {
      if (!this.#listeners.delete(listener)) return
      if (this.#listeners.size === 0) {
        this.backend.setCallback(undefined)
        this.#last = undefined
      }
    }
  }
}

function putStatus<T> (signal: Signal<T>, value: T | undefined, options: SetOptions & { wait?: boolean }): AsyncStatus {
  const timeout = options.timeout ?? DEFAULT_TIMEOUT_MS
  const what = value === undefined ? `triggering ${signal.name}` : `setting ${signal.name} to ${JSON.stringify(value)}`
  return new AsyncStatus(withTimeout(signal.backend.put(value, options.wait ?? true), timeout, what))
}

export class SignalW<T> extends Signal<T> {
  /** Write `value`; the status completes when the write has (with `wait: false`, once it is sent). */
  set (value: T, options: SetOptions & { wait?: boolean } = {}): AsyncStatus {
    return putStatus(this, value, options)
  }
}

export class SignalRW<T> extends SignalR<T> {
  set (value: T, options: SetOptions & { wait?: boolean } = {}): AsyncStatus {
    return putStatus(this, value, options)
  }

  async locate (): Promise<Location<T>> {
    const [setpoint, readback] = await Promise.all([this.backend.getSetpoint(), this.backend.getValue()])
    return { setpoint, readback }
  }
}

/** An executable signal (a PV you write to make something happen, e.g. a motor's .STOP). */
export class SignalX extends Signal<unknown> {
  trigger (options: SetOptions & { wait?: boolean } = {}): AsyncStatus {
    return putStatus(this, undefined, options)
  }
}

export interface SoftSignalOptions extends SignalMetadata {
  name?: string
}

/** A read-write signal held in memory (ophyd-async's soft_signal_rw). */
export function softSignalRW<T> (dtype: Dtype, initial?: T, options: SoftSignalOptions = {}): SignalRW<T> {
  return new SignalRW<T>(new SoftSignalBackend<T>(dtype, initial, options), options.name)
}

/** A read-only signal held in memory, and the function the owning device sets it with (soft_signal_r_and_setter). */
export function softSignalRAndSetter<T> (dtype: Dtype, initial?: T, options: SoftSignalOptions = {}): [SignalR<T>, (value: T) => void] {
  const backend = new SoftSignalBackend<T>(dtype, initial, options)
  const signal = new SignalR<T>(backend, options.name)
  // In mock mode the MockSignalBackend shares this soft store, so the setter keeps working.
  return [signal, (value: T) => { backend.setValue(value) }]
}

/** An executable signal held in memory (its puts are recorded in mock mode). */
export function softSignalX (options: { name?: string } = {}): SignalX {
  return new SignalX(new SoftSignalBackend<unknown>('integer', 0), options.name)
}
