/**
 * EpicsMotor: an EPICS motor record over Channel Access (ophyd-async's epics Motor), named by its record name, e.g.
 * `XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr` (docs/devices.md, "EpicsMotor").
 *
 * - set(target): refuses a target outside [LLM, HLM] before anything moves, writes VAL with completion (the IOC
 *   answers when the motor is at rest), reports progress from RBV, and is bounded by a timeout derived from the
 *   distance, VELO and ACCL when the caller gives none.
 * - stop(): writes STOP = 1 without waiting; a move under way then ends as a failure (CANCELLED), unless stop(true).
 * - prepare(FlyMotorInfo) / kickoff() / complete(): park the motor a run-up before the start at VMAX, set VELO to the
 *   fly velocity, then fly to a run-down past the end. unstage() (or restoreVelocity()) puts VELO back afterwards.
 *
 * Nothing touches Channel Access until connect(); with connect({ mock: true }) every signal is a mock (tests).
 */
import { defaults } from '../../config/index.js'
import type { CaConfig } from '../config/index.js'
import { ErrorCode, FlyScanError, isFlyScanError } from '../errors.js'
import {
  AsyncStatus, Device,
  type Configurable, type DataKey, type Flyable, type Hints, type Locatable, type Location, type Movable, type Preparable,
  type Readable, type Reading, type SetOptions, type SignalR, type SignalRW, type SignalW, type Stageable, type Stoppable,
  type Subscribable, type Unsubscribe, type Watcher
} from '../devices/index.js'
import { caSignalR, caSignalRW, caSignalW } from '../backends/index.js'
import { checkFlyMotorInfo, flyMotion, moveTimeoutMs, type FlyMotion, type FlyMotorInfo } from './fly-motor-info.js'

export interface EpicsMotorOptions {
  readonly name?: string
  /**
   * The velocity (EGU/s) that unstage() and restoreVelocity() write back after prepare() changed VELO (TST: 90 deg/s).
   * Default: VELO as the first prepare() since the last restore found it.
   */
  readonly velocity?: number
  /** Added to a move's expected duration when set() gets no timeout (default defaults.motor.moveTimeoutMarginMs). */
  readonly moveTimeoutMarginMs?: number
  /** The config's `ca` section, used if this thread's Channel Access context does not exist yet. */
  readonly ca?: CaConfig
}

/** A set() under way; stop() marks it. */
interface ActiveMove {
  stopped: { readonly success: boolean } | undefined
}

interface Prepared {
  readonly info: FlyMotorInfo
  readonly motion: FlyMotion
}

export class EpicsMotor extends Device implements Movable, Readable, Configurable, Stoppable, Locatable, Stageable,
  Preparable<FlyMotorInfo>, Flyable, Subscribable<number> {
  /** The record name; each signal is one of its fields. */
  readonly prefix: string
  /** .VAL: where the motor is told to go. */
  readonly userSetpoint: SignalRW<number>
  /** .RBV: where the motor is. Named as the motor itself, so it is the motor's reading. */
  readonly userReadback: SignalR<number>
  /** .VELO (EGU/s). */
  readonly velocity: SignalRW<number>
  /** .ACCL: seconds from rest to VELO. */
  readonly accelerationTime: SignalRW<number>
  /** .VMAX (EGU/s); 0 means no maximum. */
  readonly maxVelocity: SignalR<number>
  /** .DMOV: true at rest. */
  readonly doneMove: SignalR<boolean>
  /** .STOP: stop() writes 1 (a SignalX would write the value read at connect, 0, which stops nothing). */
  readonly motorStop: SignalW<number>
  /** .HLM and .LLM: soft limits; both 0 means none. */
  readonly highLimitTravel: SignalRW<number>
  readonly lowLimitTravel: SignalRW<number>
  /** .EGU */
  readonly units: SignalR<string>
  /** .PREC */
  readonly precision: SignalR<number>
  /** .RDBD: the retry deadband. */
  readonly deadband: SignalR<number>
  readonly #velocityOption: number | undefined
  readonly #marginMs: number
  readonly #moves = new Set<ActiveMove>()
  #savedVelocity: number | undefined
  #prepared: Prepared | undefined
  #flyStatus: AsyncStatus | undefined

  constructor (prefix: string, options: EpicsMotorOptions = {}) {
    super()
    if (typeof prefix !== 'string' || prefix === '') {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `EpicsMotor ${options.name ?? ''}: the prefix (record name) must be a non-empty string`)
    }
    this.prefix = prefix
    const ca = options.ca === undefined ? {} : { config: options.ca }
    this.userSetpoint = caSignalRW<number>(`${prefix}.VAL`, ca)
    this.userReadback = caSignalR<number>(`${prefix}.RBV`, ca)
    this.velocity = caSignalRW<number>(`${prefix}.VELO`, ca)
    this.accelerationTime = caSignalRW<number>(`${prefix}.ACCL`, ca)
    this.maxVelocity = caSignalR<number>(`${prefix}.VMAX`, ca)
    this.doneMove = caSignalR<boolean>(`${prefix}.DMOV`, { ...ca, datatype: 'boolean' })
    this.motorStop = caSignalW<number>(`${prefix}.STOP`, { ...ca, datatype: 'integer' })
    this.highLimitTravel = caSignalRW<number>(`${prefix}.HLM`, ca)
    this.lowLimitTravel = caSignalRW<number>(`${prefix}.LLM`, ca)
    this.units = caSignalR<string>(`${prefix}.EGU`, { ...ca, datatype: 'string' })
    this.precision = caSignalR<number>(`${prefix}.PREC`, { ...ca, datatype: 'integer' })
    this.deadband = caSignalR<number>(`${prefix}.RDBD`, ca)
    this.#velocityOption = options.velocity
    this.#marginMs = options.moveTimeoutMarginMs ?? defaults.motor.moveTimeoutMarginMs
    this.setName(options.name ?? '')
  }

  /** The readback's data key is the motor's own name (as ophyd-async's Motor). */
  override setName (name: string): void {
    super.setName(name)
    this.userReadback.setName(name)
  }

  get hints (): Hints { return { fields: [this.name] } }

  /** The velocity unstage() will write back, if prepare() changed VELO since the last restore. */
  get savedVelocity (): number | undefined { return this.#savedVelocity }

  // -------------------------------------------------------------------------------------------------------------
  // Movable, Stoppable, Locatable

  /**
   * Move to `target`. Watchers get `{ current, initial, target, name, unit, precision, fraction }` on every RBV update.
   * Without `options.timeout` the bound is |target - RBV| / VELO + 2 x ACCL plus the margin. Fails with BAD_INPUT
   * outside the soft limits or with VELO <= 0 (before writing anything), TIMEOUT past the bound (the motor is not
   * stopped), CANCELLED if stop() ended the move.
   */
  set (target: number, options: SetOptions = {}): AsyncStatus {
    return this.#move(target, options).status
  }

  /** Write STOP = 1 (without waiting: the IOC completes it only once the motor is at rest). A move under way fails unless `success`. */
  async stop (success = false): Promise<void> {
    for (const move of this.#moves) move.stopped = { success }
    await this.motorStop.set(1, { wait: false })
  }

  async locate (): Promise<Location> {
    const [setpoint, readback] = await Promise.all([this.userSetpoint.getValue(), this.userReadback.getValue()])
    return { setpoint, readback }
  }

  /** The status of the move, and a promise that resolves once VAL is written (or rejects if the move failed before). */
  #move (target: number, options: SetOptions): { status: AsyncStatus, started: Promise<void> } {
    let markStarted = (): void => {}
    let failStart = (_err: unknown): void => {}
    const started = new Promise<void>((resolve, reject) => { markStarted = resolve; failStart = reject })
    started.catch(() => {}) // whoever needs the failure gets it from the status
    const status = AsyncStatus.watchable(async (report) => {
      try {
        await this.#runMove(target, options, report, markStarted)
      } catch (err) {
        failStart(err)
        throw err
      }
    })
    return { status, started }
  }

  async #runMove (target: number, options: SetOptions, report: Watcher, markStarted: () => void): Promise<void> {
    const move: ActiveMove = { stopped: undefined }
    this.#moves.add(move)
    try {
      const [initial, low, high, velocity, accelerationTime, egu, precision] = await Promise.all([
        this.userReadback.getValue(), this.lowLimitTravel.getValue(), this.highLimitTravel.getValue(),
        this.velocity.getValue(), this.accelerationTime.getValue(), this.units.getValue(), this.precision.getValue()])
      const u = withUnits(egu)
      this.#checkLimits(target, low, high, egu, 'target')
      if (!(velocity > 0)) {
        throw new FlyScanError(ErrorCode.BAD_INPUT, `${this.#label}: cannot move with VELO=${velocity} (${this.prefix}.VELO must be > 0)`,
          { details: { device: this.#label, velocity } })
      }
      if (move.stopped !== undefined) return this.#stoppedResult(move, initial, target, egu)
      const timeoutMs = options.timeout ?? moveTimeoutMs(target - initial, velocity, accelerationTime, this.#marginMs)
      const distance = target - initial
      const progress = (current: number): void => {
        report({
          current,
          initial,
          target,
          name: this.name,
          precision,
          fraction: distance === 0 ? 1 : Math.min(1, Math.max(0, (current - initial) / distance)),
          ...(egu === '' ? {} : { unit: egu })
        })
      }
      const unsubscribe = this.userReadback.subscribeValue(progress)
      let position: number
      try {
        const put = this.userSetpoint.set(target, { timeout: timeoutMs })
        markStarted()
        try {
          await put
        } catch (err) {
          if (!isFlyScanError(err, ErrorCode.TIMEOUT)) throw err
          const bound = options.timeout !== undefined
            ? 'the timeout given'
            : `|${distance}| / VELO ${velocity} + 2 x ACCL ${accelerationTime} s + ${this.#marginMs} ms`
          throw new FlyScanError(ErrorCode.TIMEOUT,
            `${this.#label}: the move from ${u(initial)} to ${u(target)} did not finish within ${timeoutMs} ms (${bound}); the motor was not stopped`,
            { details: { device: this.#label, initial, target, timeoutMs }, cause: err })
        }
        position = await this.userReadback.getValue()
        progress(position)
      } finally {
        unsubscribe()
      }
      if (move.stopped !== undefined) this.#stoppedResult(move, position, target, egu)
    } finally {
      this.#moves.delete(move)
    }
  }

  /** After a stop: nothing for stop(true), else the CANCELLED failure (a stopped move is not a success). */
  #stoppedResult (move: ActiveMove, position: number, target: number, egu: string): void {
    if (move.stopped?.success === true) return
    const u = withUnits(egu)
    throw new FlyScanError(ErrorCode.CANCELLED, `${this.#label} was stopped at ${u(position)} before reaching ${u(target)}`,
      { details: { device: this.#label, position, target } })
  }

  /**
   * BAD_INPUT naming the limit if `position` is outside [LLM, HLM] (both 0: the motor record's "no limits"). The message
   * reads `<device>: <what> <position> <note> is above the high limit HLM=...`.
   */
  #checkLimits (position: number, low: number, high: number, egu: string, what: string, note = ''): void {
    const u = withUnits(egu)
    const fail = (why: string): FlyScanError => new FlyScanError(ErrorCode.BAD_INPUT,
      `${this.#label}: ${what} ${u(position)}${note === '' ? '' : ` ${note}`} ${why}; nothing was moved`,
      { details: { device: this.#label, position, low, high } })
    if (!Number.isFinite(position)) throw fail('is not a finite number')
    if (low === 0 && high === 0) return
    if (position > high) throw fail(`is above the high limit HLM=${u(high)} (${this.prefix}.HLM)`)
    if (position < low) throw fail(`is below the low limit LLM=${u(low)} (${this.prefix}.LLM)`)
  }

  get #label (): string { return this.name === '' ? this.prefix : this.name }

  // -------------------------------------------------------------------------------------------------------------
  // Preparable, Flyable, Stageable

  /**
   * Get ready to fly `info`: refuse a fly velocity above VMAX (when VMAX > 0) or a run-up or run-down outside the soft
   * limits, before anything moves; remember the velocity to restore; move at VMAX (at VELO when VMAX is 0) to the
   * run-up start; set VELO to the fly velocity.
   */
  prepare (info: FlyMotorInfo): AsyncStatus {
    return new AsyncStatus((async () => {
      checkFlyMotorInfo(info, this.#label)
      const [maxVelocity, accelerationTime, velocity, low, high, egu] = await Promise.all([
        this.maxVelocity.getValue(), this.accelerationTime.getValue(), this.velocity.getValue(),
        this.lowLimitTravel.getValue(), this.highLimitTravel.getValue(), this.units.getValue()])
      const motion = flyMotion(info, accelerationTime)
      const u = withUnits(egu)
      const perS = withUnits(egu === '' ? '' : `${egu}/s`)
      if (maxVelocity > 0 && motion.velocity > maxVelocity) {
        throw new FlyScanError(ErrorCode.BAD_INPUT,
          `${this.#label}: the fly velocity ${perS(motion.velocity)} (${u(Math.abs(info.endPosition - info.startPosition))} in ${info.timeForMove} s) ` +
          `is above the maximum VMAX=${perS(maxVelocity)} (${this.prefix}.VMAX); nothing was moved`,
          { details: { device: this.#label, velocity: motion.velocity, maxVelocity } })
      }
      this.#checkLimits(motion.rampUpStart, low, high, egu, 'the run-up start', `(${u(motion.runUp)} before startPosition ${info.startPosition})`)
      this.#checkLimits(motion.rampDownEnd, low, high, egu, 'the run-down end', `(${u(motion.runUp)} past endPosition ${info.endPosition})`)
      this.#prepared = undefined
      this.#savedVelocity ??= this.#velocityOption ?? velocity
      if (maxVelocity > 0) await this.velocity.set(maxVelocity)
      await this.set(motion.rampUpStart)
      await this.velocity.set(motion.velocity)
      this.#prepared = { info, motion }
    })())
  }

  /** Start the fly move to the run-down end; done once VAL is written. complete() gives the move's status. */
  kickoff (): AsyncStatus {
    const prepared = this.#prepared
    if (prepared === undefined) {
      return AsyncStatus.rejected(new FlyScanError(ErrorCode.BAD_INPUT, `${this.#label}: kickoff() needs a prepare(FlyMotorInfo) first`,
        { details: { device: this.#label } }))
    }
    this.#prepared = undefined
    const { status, started } = this.#move(prepared.motion.rampDownEnd, prepared.info.timeout === undefined ? {} : { timeout: prepared.info.timeout })
    this.#flyStatus = status
    return new AsyncStatus(started)
  }

  /** The fly move's status (with its progress); it fails if the move is stopped or times out. */
  complete (): AsyncStatus {
    return this.#flyStatus ?? AsyncStatus.rejected(new FlyScanError(ErrorCode.BAD_INPUT, `${this.#label}: complete() needs a kickoff() first`,
      { details: { device: this.#label } }))
  }

  /** Forget any earlier prepare or fly. */
  async stage (): Promise<void> {
    this.#prepared = undefined
    this.#flyStatus = undefined
  }

  /** Restore the velocity (restoreVelocity) and forget the fly. */
  async unstage (): Promise<void> {
    this.#prepared = undefined
    this.#flyStatus = undefined
    await this.restoreVelocity()
  }

  /** Write back the velocity saved by prepare() (the `velocity` option, else VELO as it was); nothing if none is saved. */
  async restoreVelocity (): Promise<void> {
    const velocity = this.#savedVelocity
    if (velocity === undefined) return
    await this.velocity.set(velocity)
    this.#savedVelocity = undefined
  }

  // -------------------------------------------------------------------------------------------------------------
  // Readable, Configurable, Subscribable

  async read (): Promise<Record<string, Reading>> {
    return await this.userReadback.read()
  }

  /** The readback's data key, with EGU and PREC as they are now (CA metadata is read once, at connect). */
  async describe (): Promise<Record<string, DataKey>> {
    const [keys, egu, precision] = await Promise.all([this.userReadback.describe(), this.units.getValue(), this.precision.getValue()])
    const out: Record<string, DataKey> = {}
    for (const [name, key] of Object.entries(keys)) out[name] = { ...key, precision, ...(egu === '' ? {} : { units: egu }) }
    return out
  }

  async readConfiguration (): Promise<Record<string, Reading>> {
    const parts = await Promise.all([this.velocity.read(), this.accelerationTime.read(), this.units.read()])
    return Object.assign({}, ...parts) as Record<string, Reading>
  }

  async describeConfiguration (): Promise<Record<string, DataKey>> {
    const parts = await Promise.all([this.velocity.describe(), this.accelerationTime.describe(), this.units.describe()])
    return Object.assign({}, ...parts) as Record<string, DataKey>
  }

  subscribe (cb: (reading: Record<string, Reading<number>>) => void): Unsubscribe {
    return this.userReadback.subscribe(cb)
  }

  subscribeValue (cb: (value: number) => void): Unsubscribe {
    return this.userReadback.subscribeValue(cb)
  }
}

/** `x deg`, or `x` when the motor has no units. */
function withUnits (egu: string): (x: number) => string {
  return (x) => egu === '' ? String(x) : `${x} ${egu}`
}
