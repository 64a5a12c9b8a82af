/**
 * A simulated motor (Movable, Readable, Configurable, Stoppable, Locatable) over soft signals, shaped like an EPICS
 * motor record: it moves at `velocity` units/s in the injected clock's time, publishing its readback every
 * `updatePeriodMs`. No acceleration; limits are checked before a move.
 */
import { defaults } from '../../../config/index.js'
import { ErrorCode, FlyScanError } from '../../errors.js'
import {
  AsyncStatus, Device, realClock, softSignalRAndSetter, softSignalRW, softSignalX,
  type Clock, type DataKey, type Hints, type Location, type Movable, type Readable, type Reading, type SetOptions,
  type SignalR, type Stoppable, type Locatable, type Configurable
} from '../core/index.js'

export interface SimMotorOptions {
  name?: string
  /** units/s */
  velocity?: number
  units?: string
  lowLimit?: number
  highLimit?: number
  initial?: number
  clock?: Clock
  updatePeriodMs?: number
}

export class SimMotor extends Device implements Movable, Readable, Configurable, Stoppable, Locatable {
  readonly userSetpoint
  readonly userReadback: SignalR<number>
  readonly velocity
  readonly lowLimitTravel
  readonly highLimitTravel
  readonly motorDoneMove: SignalR<boolean>
  readonly motorStop
  readonly #setReadback: (v: number) => void
  readonly #setDone: (v: boolean) => void
  readonly #clock: Clock
  readonly #updatePeriodMs: number
  #stopRequest: { success: boolean } | undefined

  constructor (options: SimMotorOptions = {}) {
    super()
    const units = options.units ?? 'deg'
    const initial = options.initial ?? 0
    this.userSetpoint = softSignalRW<number>('number', initial, { units, precision: 3 })
    const [readback, setReadback] = softSignalRAndSetter<number>('number', initial, { units, precision: 3 })
    this.userReadback = readback
    this.#setReadback = setReadback
    this.velocity = softSignalRW<number>('number', options.velocity ?? defaults.devices.simMotorVelocity, { units: `${units}/s` })
    this.lowLimitTravel = softSignalRW<number>('number', options.lowLimit ?? -Infinity, { units })
    this.highLimitTravel = softSignalRW<number>('number', options.highLimit ?? Infinity, { units })
    const [done, setDone] = softSignalRAndSetter<boolean>('boolean', true)
    this.motorDoneMove = done
    this.#setDone = setDone
    this.motorStop = softSignalX()
    this.#clock = options.clock ?? realClock
    this.#updatePeriodMs = options.updatePeriodMs ?? defaults.devices.simMotorUpdatePeriodMs
    this.setName(options.name ?? '')
  }

  /** The readback's data key is the motor's own name (as ophyd-async's Motor). */
  override setName (name: string): void {
    super.setName(name)
    this.userReadback.setName(name)
  }

  get hints (): Hints { return { fields: [this.name] } }

  /** Move to `value`; progress is reported to watchers; `stop()` ends the move (it fails unless stop(true)). */
  set (value: number, _options: SetOptions = {}): AsyncStatus {
    return AsyncStatus.watchable(async (report) => {
      const [low, high, velocity, start] = await Promise.all([
        this.lowLimitTravel.getValue(), this.highLimitTravel.getValue(), this.velocity.getValue(), this.userReadback.getValue()])
      if (!Number.isFinite(value) || value < low || value > high) {
        throw new FlyScanError(ErrorCode.BAD_INPUT, `${this.name}: target ${value} is outside the limits [${low}, ${high}]`,
          { details: { target: value, low, high } })
      }
      if (!(velocity > 0)) {
        throw new FlyScanError(ErrorCode.BAD_INPUT, `${this.name}: velocity ${velocity} must be > 0 to move`, { details: { velocity } })
      }
      this.#stopRequest = undefined
      await this.userSetpoint.set(value)
      this.#setDone(false)
      const distance = value - start
      const durationMs = Math.abs(distance) / velocity * 1000
      const t0 = this.#clock.now()
      const unit = this.userReadback.backend.metadata.units
      let position = start
      try {
        while (position !== value) {
          await this.#clock.sleep(Math.min(this.#updatePeriodMs, Math.max(0, durationMs - (this.#clock.now() - t0))))
          const fraction = durationMs === 0 ? 1 : Math.min(1, (this.#clock.now() - t0) / durationMs)
          position = fraction === 1 ? value : start + distance * fraction
          this.#setReadback(position)
          const elapsedMs = this.#clock.now() - t0
          report({
            current: position,
            initial: start,
            target: value,
            name: this.name,
            fraction,
            timeElapsed: elapsedMs / 1000,
            timeRemaining: Math.max(0, durationMs - elapsedMs) / 1000,
            ...(unit === undefined ? {} : { unit })
          })
          const stop = this.#stopRequest as { success: boolean } | undefined // set by stop() meanwhile
          if (stop !== undefined) {
            if (stop.success) return
            throw new FlyScanError(ErrorCode.CANCELLED, `${this.name} was stopped at ${position} before reaching ${value}`,
              { details: { position, target: value } })
          }
        }
      } finally {
        this.#setDone(true)
      }
    })
  }

  async stop (success = false): Promise<void> {
    this.#stopRequest = { success }
    await this.motorStop.trigger()
  }

  async locate (): Promise<Location> {
    const [setpoint, readback] = await Promise.all([this.userSetpoint.getValue(), this.userReadback.getValue()])
    return { setpoint, readback }
  }

  async read (): Promise<Record<string, Reading>> {
    return { ...await this.userReadback.read(), ...await this.userSetpoint.read() }
  }

  async describe (): Promise<Record<string, DataKey>> {
    return { ...await this.userReadback.describe(), ...await this.userSetpoint.describe() }
  }

  async readConfiguration (): Promise<Record<string, Reading>> {
    return { ...await this.velocity.read(), ...await this.lowLimitTravel.read(), ...await this.highLimitTravel.read() }
  }

  async describeConfiguration (): Promise<Record<string, DataKey>> {
    return { ...await this.velocity.describe(), ...await this.lowLimitTravel.describe(), ...await this.highLimitTravel.describe() }
  }
}
