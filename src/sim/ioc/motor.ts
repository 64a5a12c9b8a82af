/**
 * A simulated EPICS motor record (the fields ophyd and ophyd-async use), moving with a trapezoidal velocity profile
 * on the SimClock.
 *
 * A write to VAL plans the move from where the motor is now: accelerate at VELO/ACCL (ACCL is the time to reach
 * VELO from rest), cruise at VELO, decelerate to stop on the target; a short move never reaches VELO and is a
 * triangle. The plan is a list of constant-acceleration segments, so `positionAt(ms)` is exact at any instant (the
 * simulated PandA's encoder follows it). RBV is posted every `updateMs` while moving; DMOV=0/MOVN=1 during the move,
 * then MOVN=0 and DMOV=1. The write's promise resolves when the motor is at rest again (put-callback semantics).
 *
 * A new VAL during a move retargets from the current position and velocity (decelerating first if the motor must
 * turn round); every pending write resolves when the motor finally stops. STOP=1 decelerates to rest and sets VAL to
 * where the motor stopped. A VAL outside [LLM, HLM] is refused (LVIO=1) unless both limits are 0.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import { DbrBase, type DbrMetadata, type DbrValue } from '../../parsers/index.js'
import type { SimClock } from './pv.js'
import { SimPv, firstNumber, scalarValue } from './records.js'

export interface MotorOptions {
  /** The record name, e.g. `XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr`; fields are `<prefix>.VELO` and so on. */
  readonly prefix: string
  readonly desc?: string
  readonly egu?: string
  readonly prec?: number
  /** Velocity (EGU/s). */
  readonly velo?: number
  /** Largest velocity (EGU/s); 0 for no maximum. */
  readonly vmax?: number
  /** Seconds to reach VELO from rest; 0 for an instant change of speed. */
  readonly accl?: number
  /** Soft limits; both 0 means none. */
  readonly hlm?: number
  readonly llm?: number
  /** Starting position. */
  readonly value?: number
  /** Retry deadband and motor resolution (served for clients; moves are exact). */
  readonly rdbd?: number
  readonly mres?: number
  /** Period of RBV updates while moving (ms). */
  readonly updateMs?: number
}

export const MOTOR_DEFAULTS = Object.freeze({
  egu: 'deg',
  prec: 3,
  /** TST plans restore the rotation stage to 90 deg/s. */
  velo: 90,
  vmax: 0,
  accl: 0.2,
  rdbd: 0.001,
  mres: 0.001,
  /** A motor record's readback typically refreshes at 10 Hz to 100 Hz while moving; 10 ms is the fast end. */
  updateMs: 10
})

/** The fields served besides VAL (`<prefix>.FIELD`), in the order they are listed. */
export const MOTOR_FIELDS = [
  'RBV', 'DMOV', 'MOVN', 'VELO', 'ACCL', 'VMAX', 'VBAS', 'HLM', 'LLM', 'DHLM', 'DLLM', 'STOP', 'EGU', 'PREC', 'DESC',
  'RDBD', 'MRES', 'TWV', 'TWF', 'TWR', 'LVIO', 'TDIR', 'HLS', 'LLS'
] as const
type MotorField = typeof MOTOR_FIELDS[number]

/** One piece of a move: constant acceleration from (x0, v0) at t0Ms for durS seconds. */
export interface Segment {
  readonly t0Ms: number
  readonly x0: number
  readonly v0: number
  readonly a: number
  readonly durS: number
}

/** A planned move: its segments, where it ends and when, and its acceleration (EGU/s², Infinity for instant). */
export interface Profile {
  readonly segments: readonly Segment[]
  readonly target: number
  readonly endMs: number
  readonly accel: number
}

function sign (x: number): number {
  return x > 0 ? 1 : x < 0 ? -1 : 0
}

/**
 * Plan a move from (x, v) at `t0Ms` to rest at `target`, with cruise speed `speed` > 0 and acceleration `accel`
 * (Infinity for instant changes of speed). If the motor moves away from the target, or too fast to stop before it,
 * it first decelerates to rest.
 */
export function planMove (x: number, v: number, target: number, speed: number, accel: number, t0Ms: number): Profile {
  const segments: Segment[] = []
  let t = t0Ms
  const push = (x0: number, v0: number, a: number, durS: number): number => {
    if (durS > 0) segments.push({ t0Ms: t, x0, v0, a, durS })
    t += durS * 1000
    return x0 + v0 * durS + a * durS * durS / 2
  }
  if (!Number.isFinite(accel)) {
    const d = target - x
    if (d !== 0) push(x, sign(d) * speed, 0, Math.abs(d) / speed)
    return { segments, target, endMs: t, accel }
  }
  // Turn round (or overshoot and come back) when the target cannot be reached by decelerating towards it.
  let dir = sign(target - x)
  if (v !== 0 && (sign(v) !== dir || v * v / (2 * accel) > Math.abs(target - x))) {
    x = push(x, v, -sign(v) * accel, Math.abs(v) / accel)
    v = 0
    dir = sign(target - x)
  }
  let u = Math.abs(v)
  if (u > speed) {
    x = push(x, dir * u, -dir * accel, (u - speed) / accel)
    u = speed
  }
  const d = Math.abs(target - x)
  if (d === 0) return { segments, target, endMs: t, accel }
  const accelDist = (speed * speed - u * u) / (2 * accel)
  const decelDist = speed * speed / (2 * accel)
  if (accelDist + decelDist <= d) {
    x = push(x, dir * u, dir * accel, (speed - u) / accel)
    x = push(x, dir * speed, 0, (d - accelDist - decelDist) / speed)
    push(x, dir * speed, -dir * accel, speed / accel)
  } else {
    const peak = Math.sqrt((2 * accel * d + u * u) / 2)
    x = push(x, dir * u, dir * accel, (peak - u) / accel)
    push(x, dir * peak, -dir * accel, peak / accel)
  }
  return { segments, target, endMs: t, accel }
}

/** Position and velocity of a profile at `ms`. */
function stateAt (profile: Profile, ms: number): { x: number, v: number } {
  if (ms >= profile.endMs) return { x: profile.target, v: 0 }
  for (const s of profile.segments) {
    const end = s.t0Ms + s.durS * 1000
    if (ms < end) {
      const dt = Math.max(ms - s.t0Ms, 0) / 1000
      return { x: s.x0 + s.v0 * dt + s.a * dt * dt / 2, v: s.v0 + s.a * dt }
    }
  }
  return { x: profile.target, v: 0 }
}

interface Pending {
  readonly resolve: () => void
  readonly reject: (err: Error) => void
}

export class SimMotorRecord {
  readonly prefix: string
  readonly #clock: SimClock
  readonly #updateMs: number
  readonly #val: SimPv
  readonly #fields = new Map<MotorField, SimPv>()
  #profile: Profile | undefined
  #rest: number
  #pending: Pending[] = []
  #cancelTimer: (() => void) | undefined
  #closed = false

  constructor (options: MotorOptions, clock: SimClock) {
    this.prefix = options.prefix
    this.#clock = clock
    this.#updateMs = options.updateMs ?? MOTOR_DEFAULTS.updateMs
    this.#rest = options.value ?? 0
    const d = MOTOR_DEFAULTS
    const vmax = options.vmax ?? d.vmax
    const velo = options.velo ?? d.velo
    const initial: Record<MotorField, number | string> = {
      RBV: this.#rest,
      DMOV: 1,
      MOVN: 0,
      VELO: vmax > 0 ? Math.min(velo, vmax) : velo,
      ACCL: options.accl ?? d.accl,
      VMAX: vmax,
      VBAS: 0,
      HLM: options.hlm ?? 0,
      LLM: options.llm ?? 0,
      DHLM: options.hlm ?? 0,
      DLLM: options.llm ?? 0,
      STOP: 0,
      EGU: options.egu ?? d.egu,
      PREC: options.prec ?? d.prec,
      DESC: options.desc ?? '',
      RDBD: options.rdbd ?? d.rdbd,
      MRES: options.mres ?? d.mres,
      TWV: 1,
      TWF: 0,
      TWR: 0,
      LVIO: 0,
      TDIR: 0,
      HLS: 0,
      LLS: 0
    }
    this.#val = new SimPv({
      name: this.prefix,
      base: DbrBase.DOUBLE,
      value: Float64Array.of(this.#rest),
      writable: true,
      metadata: () => this.#positionMetadata(),
      onPut: (value) => this.moveTo(firstNumber(value))
    }, clock)
    for (const field of MOTOR_FIELDS) {
      const base = FIELD_BASE[field]
      const readOnly = READ_ONLY.has(field)
      this.#fields.set(field, new SimPv({
        name: `${this.prefix}.${field}`,
        base,
        value: scalarValue(base, initial[field]),
        writable: !readOnly,
        metadata: field === 'RBV' ? () => this.#positionMetadata() : undefined,
        onPut: readOnly ? undefined : (value) => this.#putField(field, value)
      }, clock))
    }
  }

  /** Every PV served: VAL (the bare record name) first, then the fields. */
  pvs (): SimPv[] {
    return [this.#val, ...this.#fields.values()]
  }

  /** Position at `ms` on the clock's timeline (exact, between RBV updates too). */
  positionAt (ms: number): number {
    return this.#profile === undefined ? this.#rest : stateAt(this.#profile, ms).x
  }

  /** Velocity (EGU/s, signed) at `ms`. */
  velocityAt (ms: number): number {
    return this.#profile === undefined ? 0 : stateAt(this.#profile, ms).v
  }

  /** Position now. */
  get position (): number {
    return this.positionAt(this.#clock.nowMs())
  }

  get moving (): boolean {
    return this.#profile !== undefined
  }

  /** When the current move will end (ms on the clock), if moving. */
  get moveEndMs (): number | undefined {
    return this.#profile?.endMs
  }

  /**
   * Move to `target`, as a client's write to VAL does: refused outside the soft limits, a retarget when already
   * moving. Resolves when the motor is at rest.
   */
  moveTo (target: number): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError())
    const hlm = this.#num('HLM')
    const llm = this.#num('LLM')
    const limited = hlm !== 0 || llm !== 0
    if (!Number.isFinite(target) || (limited && (target > hlm || target < llm))) {
      this.#post('LVIO', 1)
      const which = !Number.isFinite(target) ? 'not a finite number' : target > hlm ? `above the high limit HLM=${hlm}` : `below the low limit LLM=${llm}`
      return Promise.reject(new FlyScanError(ErrorCode.BAD_INPUT, `${this.prefix}: target ${target} is ${which}`,
        { details: { pv: this.prefix, target, hlm, llm } }))
    }
    const speed = this.#num('VELO')
    if (!(speed > 0)) {
      return Promise.reject(new FlyScanError(ErrorCode.BAD_INPUT, `${this.prefix}: cannot move with VELO=${speed}`,
        { details: { pv: this.prefix, velo: speed } }))
    }
    this.#post('LVIO', 0)
    this.#val.post(Float64Array.of(target))
    const done = this.#waitForRest()
    const now = this.#clock.nowMs()
    const { x, v } = this.#profile === undefined ? { x: this.#rest, v: 0 } : stateAt(this.#profile, now)
    const accl = this.#num('ACCL')
    const profile = planMove(x, v, target, speed, accl > 0 ? speed / accl : Infinity, now)
    if (this.#profile === undefined && profile.segments.length === 0) {
      // A null move: DMOV still pulses 0 then 1, as the motor record does, so put-callbacks and DMOV watchers finish.
      this.#post('DMOV', 0)
      this.#finish(target)
      return done
    }
    this.#start(profile, target > x ? 1 : 0)
    return done
  }

  /** Decelerate to rest (STOP=1); VAL becomes where the motor stops. Pending moves resolve then. */
  stop (): void {
    if (this.#closed) return
    const now = this.#clock.nowMs()
    if (this.#profile === undefined) {
      this.#val.post(Float64Array.of(this.#rest))
      return
    }
    const { x, v } = stateAt(this.#profile, now)
    const accel = this.#profile.accel
    if (v === 0 || !Number.isFinite(accel)) {
      this.#profile = { segments: [], target: x, endMs: now, accel }
    } else {
      // Decelerate at the move's own rate.
      const durS = Math.abs(v) / accel
      const segments = [{ t0Ms: now, x0: x, v0: v, a: -sign(v) * accel, durS }]
      this.#profile = { segments, target: x + v * durS / 2, endMs: now + durS * 1000, accel }
    }
    this.#val.post(Float64Array.of(this.#profile.target))
    this.#tick()
  }

  /** Stop timers and reject every pending move (the IOC is shutting down). */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#cancelTimer?.()
    this.#cancelTimer = undefined
    const pending = this.#pending
    this.#pending = []
    for (const p of pending) p.reject(this.#closedError())
  }

  #closedError (): FlyScanError {
    return new FlyScanError(ErrorCode.CANCELLED, `${this.prefix}: the simulated IOC closed`, { details: { pv: this.prefix } })
  }

  #waitForRest (): Promise<void> {
    return new Promise<void>((resolve, reject) => { this.#pending.push({ resolve, reject }) })
  }

  #start (profile: Profile, towardsHigher: number): void {
    const wasMoving = this.#profile !== undefined
    this.#profile = profile
    this.#post('TDIR', towardsHigher)
    if (!wasMoving) {
      this.#post('DMOV', 0)
      this.#post('MOVN', 1)
    }
    this.#tick()
  }

  /** Post RBV, then schedule the next update or finish the move. */
  #tick (): void {
    this.#cancelTimer?.()
    this.#cancelTimer = undefined
    const profile = this.#profile
    if (profile === undefined) return
    const now = this.#clock.nowMs()
    if (now >= profile.endMs) {
      this.#finish(profile.target)
      return
    }
    this.#post('RBV', stateAt(profile, now).x)
    this.#cancelTimer = this.#clock.setTimer(() => this.#tick(), Math.min(this.#updateMs, profile.endMs - now))
  }

  #finish (position: number): void {
    this.#profile = undefined
    this.#rest = position
    this.#post('RBV', position)
    this.#post('MOVN', 0)
    this.#post('DMOV', 1)
    const pending = this.#pending
    this.#pending = []
    for (const p of pending) p.resolve()
  }

  #putField (field: MotorField, value: DbrValue): void | Promise<void> {
    const v = field === 'EGU' || field === 'DESC' ? String(value[0] ?? '') : firstNumber(value)
    switch (field) {
      case 'STOP':
        this.#post('STOP', 1)
        if (v !== 0) this.stop()
        this.#post('STOP', 0)
        return
      case 'TWF': case 'TWR': {
        if (v === 0) return
        this.#post(field, 1)
        const step = field === 'TWF' ? this.#num('TWV') : -this.#num('TWV')
        const move = this.moveTo(firstNumber(this.#val.get().value) + step)
        this.#post(field, 0)
        return move
      }
      case 'VELO': case 'VMAX': {
        this.#post(field, v as number)
        const vmax = this.#num('VMAX')
        const velo = Math.max(this.#num('VELO'), 0)
        this.#post('VELO', vmax > 0 ? Math.min(velo, vmax) : velo)
        return
      }
      case 'ACCL':
        this.#post('ACCL', Math.max(v as number, 0))
        return
      case 'HLM': case 'DHLM':
        this.#post('HLM', v as number)
        this.#post('DHLM', v as number)
        this.#val.postProperty()
        this.#fields.get('RBV')?.postProperty()
        return
      case 'LLM': case 'DLLM':
        this.#post('LLM', v as number)
        this.#post('DLLM', v as number)
        this.#val.postProperty()
        this.#fields.get('RBV')?.postProperty()
        return
      case 'EGU': case 'PREC':
        this.#post(field, v)
        this.#val.postProperty()
        this.#fields.get('RBV')?.postProperty()
        return
      default:
        this.#post(field, v)
    }
  }

  #num (field: MotorField): number {
    return firstNumber((this.#fields.get(field) as SimPv).get().value)
  }

  #post (field: MotorField, v: number | string): void {
    const pv = this.#fields.get(field) as SimPv
    pv.post(scalarValue(pv.base, v))
  }

  #positionMetadata (): DbrMetadata {
    const hlm = this.#num('HLM')
    const llm = this.#num('LLM')
    return {
      units: String((this.#fields.get('EGU') as SimPv).get().value[0] ?? ''),
      precision: this.#num('PREC'),
      upperDispLimit: hlm,
      lowerDispLimit: llm,
      upperCtrlLimit: hlm,
      lowerCtrlLimit: llm
    }
  }
}

/** Field types as in the motor record's .dbd (motorRecord.dbd of epics-modules/motor). */
const FIELD_BASE: Readonly<Record<MotorField, DbrBase>> = {
  RBV: DbrBase.DOUBLE,
  DMOV: DbrBase.SHORT,
  MOVN: DbrBase.SHORT,
  VELO: DbrBase.DOUBLE,
  ACCL: DbrBase.DOUBLE,
  VMAX: DbrBase.DOUBLE,
  VBAS: DbrBase.DOUBLE,
  HLM: DbrBase.DOUBLE,
  LLM: DbrBase.DOUBLE,
  DHLM: DbrBase.DOUBLE,
  DLLM: DbrBase.DOUBLE,
  STOP: DbrBase.SHORT,
  EGU: DbrBase.STRING,
  PREC: DbrBase.SHORT,
  DESC: DbrBase.STRING,
  RDBD: DbrBase.DOUBLE,
  MRES: DbrBase.DOUBLE,
  TWV: DbrBase.DOUBLE,
  TWF: DbrBase.SHORT,
  TWR: DbrBase.SHORT,
  LVIO: DbrBase.SHORT,
  TDIR: DbrBase.SHORT,
  HLS: DbrBase.SHORT,
  LLS: DbrBase.SHORT
}

/** Status fields the record computes; VBAS is fixed at 0 (moves start from rest). */
const READ_ONLY: ReadonlySet<MotorField> = new Set<MotorField>(['RBV', 'DMOV', 'MOVN', 'VBAS', 'LVIO', 'TDIR', 'HLS', 'LLS'])
