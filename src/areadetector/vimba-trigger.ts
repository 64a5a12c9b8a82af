/**
 * The ADVimba trigger logic, pure: what a TriggerInfo asks of an Allied Vision camera, as the values of the driver's
 * PVs (DESIGN.md §7), and the camera's deadtime by model. Nothing here touches Channel Access; vimba-controller.ts
 * writes the values and checks the readbacks.
 *
 *   trigger         TriggerMode  TriggerSource  ExposureMode   AcquireTime  AcquirePeriod
 *   internal        Off          Freerun        Timed          livetime     livetime + deadtime
 *   edge_trigger    On           Line<n>        Timed          livetime     (not written)
 *   constant_gate   On           Line<n>        TriggerWidth   (not written: the gate is the exposure)
 *   variable_gate   On           Line<n>        TriggerWidth   (not written)
 *
 * Always ImageMode Multiple with NumImages = numberOfEvents × exposuresPerEvent, or Continuous when numberOfEvents is 0.
 */
import { defaults } from '../../config/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'
import { framesFor, type TriggerInfo } from '../devices/index.js'

/**
 * Readout time (s) between the end of one exposure and the earliest next trigger, per Manta model, from
 * DESIGN.md §7 (Manta G-125 63 µs, G-235 390 µs, G-2460 1961 µs). A model name with a suffix (`Manta G-125B`, the
 * mono variant) matches its base model.
 */
export const MANTA_DEADTIME_S: Readonly<Record<string, number>> = Object.freeze({
  'Manta G-125': 63e-6,
  'Manta G-235': 390e-6,
  'Manta G-2460': 1961e-6
})

/** Lines a Manta takes external triggers on (TriggerSource Line1..Line4). */
export const TRIGGER_LINES = [1, 2, 3, 4] as const

export type VimbaTriggerMode = 'Off' | 'On'
export type VimbaExposureMode = 'Timed' | 'TriggerWidth'
export type VimbaImageMode = 'Multiple' | 'Continuous'

/** The driver settings for one TriggerInfo; undefined fields are left as they are. */
export interface VimbaSettings {
  readonly imageMode: VimbaImageMode
  /** Frames to take (1 with Continuous: NumImages is then ignored by the driver, but must be >= 1). */
  readonly numImages: number
  readonly triggerMode: VimbaTriggerMode
  /** `Freerun` or `Line<n>`. */
  readonly triggerSource: string
  readonly exposureMode: VimbaExposureMode
  /** Seconds. */
  readonly acquireTime: number | undefined
  /** Seconds (internal only). */
  readonly acquirePeriod: number | undefined
}

/** What the trigger logic needs to know of the camera. */
export interface VimbaCamera {
  /** For messages: the device's name (or prefix). */
  readonly name: string
  /** The camera's deadtime (s), from vimbaDeadtime(). */
  readonly deadtime: number
  /** AcquireTime limits (s). */
  readonly minExposure: number
  readonly maxExposure: number
  /** The most images NumImages takes (undefined: no limit known). */
  readonly maxImages?: number
  /** External trigger input (1..4). */
  readonly triggerLine: number
}

function badInput (camera: string, text: string, details: Record<string, string | number> = {}): FlyScanError {
  return new FlyScanError(ErrorCode.BAD_INPUT, `${camera}: ${text}`, { details: { device: camera, ...details } })
}

/**
 * The deadtime (s) of a camera: `configured` when given (the `deadtime` option: it wins over the table), else the
 * table entry of `model`. BAD_INPUT naming the model and how to set the deadtime when neither gives one.
 */
export function vimbaDeadtime (model: string, configured: number | undefined, camera: string): number {
  if (configured !== undefined) {
    if (!(Number.isFinite(configured) && configured >= 0)) {
      throw badInput(camera, `deadtime ${configured} s must be a number >= 0`, { deadtime: configured })
    }
    return configured
  }
  const known = deadtimeOfModel(model)
  if (known !== undefined) return known
  const models = Object.keys(MANTA_DEADTIME_S).join(', ')
  throw badInput(camera,
    `no deadtime known for camera model ${JSON.stringify(model)} (known: ${models}); set the device's \`deadtime\` option ` +
    '(seconds of readout between frames) or its `model` option in the config', { model })
}

/** The table's deadtime for `model` (exact, or the longest model name that `model` starts with, then a letter suffix). */
export function deadtimeOfModel (model: string): number | undefined {
  const name = model.trim()
  const exact = MANTA_DEADTIME_S[name]
  if (exact !== undefined) return exact
  let best: string | undefined
  for (const key of Object.keys(MANTA_DEADTIME_S)) {
    if (!name.startsWith(key)) continue
    if (!/^[A-Za-z]*(\s.*)?$/.test(name.slice(key.length))) continue
    if (best === undefined || key.length > best.length) best = key
  }
  return best === undefined ? undefined : MANTA_DEADTIME_S[best]
}

/** The exposure limits to check against: the IOC's control limits when it gives a range, else the configured ones. */
export function exposureLimits (control: { low?: number | null, high?: number | null } | undefined): { min: number, max: number } {
  const low = control?.low
  const high = control?.high
  if (typeof low === 'number' && typeof high === 'number' && high > low) return { min: low, max: high }
  return { min: defaults.detector.minExposureS, max: defaults.detector.maxExposureS }
}

/**
 * The settings for `info` on `camera`, after checking that the camera can do it: BAD_INPUT naming the camera and the
 * numbers when the livetime is missing (internal, edge) or outside [minExposure, maxExposure], the deadtime given is
 * shorter than the camera's, or the frame count is above NumImages' limit. `info` must have passed checkTriggerInfo.
 */
export function vimbaSettings (info: TriggerInfo, camera: VimbaCamera): VimbaSettings {
  const name = camera.name
  if (!(TRIGGER_LINES as readonly number[]).includes(camera.triggerLine)) {
    throw badInput(name, `trigger line ${camera.triggerLine} is not one of ${TRIGGER_LINES.join(', ')}`, { triggerLine: camera.triggerLine })
  }
  const frames = framesFor(info)
  if (camera.maxImages !== undefined && frames > camera.maxImages) {
    throw badInput(name, `${frames} frames (numberOfEvents ${info.numberOfEvents} x exposuresPerEvent ${info.exposuresPerEvent ?? 1}) ` +
      `is above the camera's NumImages limit of ${camera.maxImages}`, { frames, maxImages: camera.maxImages })
  }
  if (info.deadtime !== undefined && info.deadtime < camera.deadtime) {
    throw badInput(name, `the trigger allows a deadtime of ${info.deadtime} s between frames, but the camera needs at least ` +
      `${camera.deadtime} s to read out`, { deadtime: info.deadtime, cameraDeadtime: camera.deadtime })
  }
  const gated = info.trigger === 'constant_gate' || info.trigger === 'variable_gate'
  const livetime = info.livetime
  if (!gated) {
    if (livetime === undefined) {
      throw badInput(name, `trigger ${info.trigger} needs a livetime (the exposure time, seconds); none was given`, { trigger: info.trigger })
    }
    if (livetime < camera.minExposure || livetime > camera.maxExposure) {
      throw badInput(name, `livetime ${livetime} s is outside the camera's exposure range ${camera.minExposure} s .. ${camera.maxExposure} s`,
        { livetime, minExposure: camera.minExposure, maxExposure: camera.maxExposure })
    }
  }
  const continuous = info.numberOfEvents === 0
  const common = {
    imageMode: continuous ? 'Continuous' : 'Multiple',
    numImages: continuous ? 1 : frames
  } as const
  const line = `Line${camera.triggerLine}`
  switch (info.trigger) {
    case 'internal':
      return {
        ...common,
        triggerMode: 'Off',
        triggerSource: 'Freerun',
        exposureMode: 'Timed',
        acquireTime: livetime,
        acquirePeriod: (livetime as number) + (info.deadtime ?? camera.deadtime)
      }
    case 'edge_trigger':
      return { ...common, triggerMode: 'On', triggerSource: line, exposureMode: 'Timed', acquireTime: livetime, acquirePeriod: undefined }
    case 'constant_gate':
    case 'variable_gate':
      return { ...common, triggerMode: 'On', triggerSource: line, exposureMode: 'TriggerWidth', acquireTime: undefined, acquirePeriod: undefined }
  }
}
