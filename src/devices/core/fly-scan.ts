/**
 * What TST's fly-scan plans ask of a fly-scan coordinator (src/fly/coordinator.ts), as the plans see it: the
 * request (tomography or XAS, in the user's units) and the device protocol. Plans see this interface only; the
 * coordinator turns a request into the PandA's trigger setup, the cameras' TriggerInfo and the motor's FlyMotorInfo.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import type { Collectable, Flyable, Preparable, Stageable, Stoppable } from './protocols.js'

/** tomo_fly: `numImages` frames over 180° starting at `startDeg`, the stage turning for `scanTime` seconds. */
export interface TomographyRequest {
  readonly kind: 'tomography'
  readonly numImages: number
  readonly scanTime: number
  readonly startDeg: number
  /** Camera exposure (s); default: a third of the time between images (TST's rule). */
  readonly exposureTime?: number
}

/**
 * xas_fly: `npoints` rows over the energy window [startE, endE] crossed in `totalTime` seconds. TST's plans pass
 * energies through to the stage as degrees (one unit each); a camera on the trigger output exposes `exposureTime`
 * per point (default: half the point's time).
 */
export interface XasRequest {
  readonly kind: 'xas'
  readonly npoints: number
  readonly totalTime: number
  readonly startE: number
  readonly endE: number
  readonly exposureTime?: number
}

/** dark_flat: `frames` frames of every camera at their own rate (internal trigger), no motion, no PandA. */
export interface StillRequest {
  readonly kind: 'still'
  readonly frames: number
  readonly exposureTime: number
  /** Which stream the frames belong to ('dark', 'flat'); names the files. */
  readonly label: string
}

export type FlyScanRequest = TomographyRequest | XasRequest | StillRequest

/** A coordinator of the devices of one fly scan: prepared with a request, flown, stopped as one. */
export interface FlyScanDevice extends Preparable<FlyScanRequest>, Flyable, Stageable, Stoppable {
  /** The devices whose data the scan streams (PandA, cameras), to declare and collect (after prepare). */
  collectables (): Collectable[]
}

function badRequest (text: string): FlyScanError {
  return new FlyScanError(ErrorCode.BAD_INPUT, text)
}

function positive (what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw badRequest(`${what} must be a number > 0 (got ${String(v)})`)
  return v
}

function integerAtLeast (what: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw badRequest(`${what} must be an integer >= ${min} (got ${String(v)})`)
  return v
}

function finite (what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`${what} must be a finite number (got ${String(v)})`)
  return v
}

/** Check a request's types and ranges (the physics is checked by the PandA's validation); BAD_INPUT naming the field. */
export function checkFlyScanRequest (r: FlyScanRequest): void {
  if (typeof r !== 'object' || r === null) throw badRequest(`a fly-scan request must be an object (got ${String(r)})`)
  switch (r.kind) {
    case 'tomography':
      integerAtLeast('tomo_fly: numImages', r.numImages, 2)
      positive('tomo_fly: scanTime', r.scanTime)
      finite('tomo_fly: startDeg', r.startDeg)
      if (r.exposureTime !== undefined) positive('tomo_fly: exposureTime', r.exposureTime)
      return
    case 'xas':
      integerAtLeast('xas_fly: npoints', r.npoints, 2)
      positive('xas_fly: totalTime', r.totalTime)
      finite('xas_fly: startE', r.startE)
      finite('xas_fly: endE', r.endE)
      if (r.startE === r.endE) throw badRequest(`xas_fly: startE and endE are both ${r.startE}: there is no range to scan`)
      if (r.exposureTime !== undefined) positive('xas_fly: exposureTime', r.exposureTime)
      return
    case 'still':
      integerAtLeast(`${r.label}: frames`, r.frames, 1)
      positive(`${r.label}: exposureTime`, r.exposureTime)
      return
    default:
      throw badRequest(`unknown fly-scan request kind ${JSON.stringify((r as { kind?: unknown }).kind)} (tomography, xas, still)`)
  }
}
