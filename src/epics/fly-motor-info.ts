/**
 * FlyMotorInfo and the arithmetic of a motor fly scan (ophyd-async's FlyMotorInfo, camelCased), kept apart from the
 * device so that it is tested without signals.
 *
 * The motor must already cruise at the fly velocity v when it passes `startPosition`, and it may only start to slow
 * down after `endPosition`. A motor record accelerates from rest to VELO in ACCL seconds at constant acceleration, so
 * it covers v · ACCL / 2 while it speeds up (the run-up) and the same while it slows down (the run-down).
 */
import { ErrorCode, FlyScanError } from '../errors.js'

/** What a fly scan asks of a motor (ophyd-async's FlyMotorInfo). Positions in the motor's EGU. */
export interface FlyMotorInfo {
  /** Where the constant-velocity part starts: the motor is up to speed here. */
  readonly startPosition: number
  /** Where the constant-velocity part ends: the motor starts to slow down here. */
  readonly endPosition: number
  /** Seconds from startPosition to endPosition at constant velocity (> 0). */
  readonly timeForMove: number
  /** Bound on the whole fly move, kickoff to complete, in ms; default: derived as for any move (moveTimeoutMs). */
  readonly timeout?: number
}

/** The moves that carry out a FlyMotorInfo on a motor with a given ACCL. */
export interface FlyMotion {
  /** The fly velocity, unsigned (EGU/s): |end - start| / timeForMove. */
  readonly velocity: number
  /** +1 when the fly goes towards higher positions, -1 otherwise. */
  readonly direction: 1 | -1
  /** Distance covered while accelerating to the fly velocity (and again while decelerating), EGU. */
  readonly runUp: number
  /** Where prepare() parks the motor: startPosition less the run-up, in the direction of the fly. */
  readonly rampUpStart: number
  /** Where kickoff() sends the motor: endPosition plus the run-down. */
  readonly rampDownEnd: number
}

/** Throw BAD_INPUT naming `device` and the field if `info` cannot be flown. */
export function checkFlyMotorInfo (info: FlyMotorInfo, device: string): void {
  const bad = (what: string): FlyScanError => new FlyScanError(ErrorCode.BAD_INPUT, `${device}: FlyMotorInfo ${what}`, { details: { device } })
  if (typeof info !== 'object' || info === null) throw bad(`must be an object (got ${String(info)})`)
  for (const key of ['startPosition', 'endPosition', 'timeForMove'] as const) {
    if (typeof info[key] !== 'number' || !Number.isFinite(info[key])) throw bad(`${key} must be a finite number (got ${String(info[key])})`)
  }
  if (!(info.timeForMove > 0)) throw bad(`timeForMove must be > 0 s (got ${info.timeForMove})`)
  if (info.startPosition === info.endPosition) throw bad(`startPosition and endPosition are both ${info.startPosition}: there is nothing to fly over`)
  if (info.timeout !== undefined && !(typeof info.timeout === 'number' && info.timeout > 0)) {
    throw bad(`timeout must be > 0 ms when given (got ${String(info.timeout)})`)
  }
}

/** The fly velocity, signed: (end - start) / timeForMove, EGU/s. */
export function flyVelocity (info: FlyMotorInfo): number {
  return (info.endPosition - info.startPosition) / info.timeForMove
}

/** Distance a motor covers while it goes from rest to `speed` in `accelerationTime` seconds at constant acceleration. */
export function runUpDistance (speed: number, accelerationTime: number): number {
  return Math.abs(speed) * Math.max(accelerationTime, 0) / 2
}

/** The fly's velocity, direction, run-up and the two positions the motor is sent to. */
export function flyMotion (info: FlyMotorInfo, accelerationTime: number): FlyMotion {
  const signed = flyVelocity(info)
  const direction = signed < 0 ? -1 : 1
  const runUp = runUpDistance(signed, accelerationTime)
  return {
    velocity: Math.abs(signed),
    direction,
    runUp,
    rampUpStart: info.startPosition - direction * runUp,
    rampDownEnd: info.endPosition + direction * runUp
  }
}

/**
 * Bound on a move of `distance` at `velocity` (EGU/s) with `accelerationTime` (s) to reach it and as long to stop, plus
 * `marginMs`: |distance| / velocity + 2 · accelerationTime, in ms, plus the margin (ophyd-async's calculate_timeout).
 * A trapezoid never takes longer than that; a short move that never reaches the velocity takes less. Rounded up to a
 * whole ms (after rounding to the µs, so that 0.35 s is 350 ms, not 351).
 */
export function moveTimeoutMs (distance: number, velocity: number, accelerationTime: number, marginMs: number): number {
  const ms = (Math.abs(distance) / velocity + 2 * Math.max(accelerationTime, 0)) * 1000 + marginMs
  return Math.ceil(Math.round(ms * 1000) / 1000)
}
