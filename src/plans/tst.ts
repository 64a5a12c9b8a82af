/**
 * TST's fly-scan plans (the profile collection's tomo_flyscan and xas_fly, as bluesky plans over a fly-scan
 * coordinator, src/devices/core/fly-scan.ts):
 *
 * - tomoFly: `numImages` frames over 180° from `startDeg` in `scanTime` s (one PandA row and one frame per image).
 * - xasFly: `npoints` rows over [startE, endE] in `totalTime` s (the PandA's ADC means per row; a camera, if any,
 *   one frame per row).
 * - darkFlat: `numDark` frames with the shutter closed (stream 'dark'), then `numFlat` open (stream 'flat'), the
 *   cameras triggering themselves.
 *
 * Each stages the coordinator, opens a run, prepares it (together: PandA writes, camera PVs, motor to its run-up),
 * declares the stream of the devices that write data (external STREAM: keys), kicks off, and collects their
 * stream_resource / stream_datum documents every flushPeriod while the scan completes. The coordinator's timing
 * report goes into run_stop. Arguments are checked at the call (BAD_INPUT naming the argument); what the hardware
 * cannot do (a velocity above VMAX, an exposure longer than the step) is refused at prepare, before anything moves.
 */
import type { Obj, Plan } from '../engine/index.js'
import { checkFlyScanRequest, isMovable, type FlyScanDevice, type FlyScanRequest, type Movable } from '../devices/index.js'
import { collectWhileCompleting } from './fly.js'
import { absSet, badInput, collect, complete, declareStream, describeArg, kickoff, newGroup, prepare, sleep, wait } from './stubs.js'
import { runWrapper, stageWrapper } from './wrappers.js'
import type { PlanMetadata } from './scans.js'

/** Seconds between collects while a fly scan runs (stream_datum as the writers report progress). */
export const FLY_FLUSH_PERIOD_S = 0.5

function checkFlyScan (x: unknown, plan: string): asserts x is FlyScanDevice {
  const f = x as Partial<FlyScanDevice> | null
  if (typeof f !== 'object' || f === null || typeof f.prepare !== 'function' || typeof f.kickoff !== 'function' ||
    typeof f.complete !== 'function' || typeof f.collectables !== 'function') {
    throw badInput(`${plan}: ${describeArg(x)} is not a fly-scan coordinator (it needs prepare, kickoff, complete and collectables)`)
  }
}

/** A coordinator whose cameras publish live ROI statistics (FlyScan.roiCollectables, docs/analysis.md). */
interface HasRoiStreams {
  roiCollectables (): Obj[]
}

function roiStreamsOf (flyscan: FlyScanDevice): Obj[] {
  const f = flyscan as Partial<HasRoiStreams>
  return typeof f.roiCollectables === 'function' ? f.roiCollectables() : []
}

/** The stream of a camera's ROI events: `manta1_roi` beside 'primary', `dark_manta1_roi` beside 'dark'. */
export function roiStreamName (roi: Obj, stream: string): string {
  const name = (roi as { name: string }).name
  return stream === 'primary' ? name : `${stream}_${name}`
}

/**
 * prepare (wait), declare `stream` for the devices that write (and a stream per camera with ROIs), kickoff (wait),
 * collect until complete: the writers' stream documents, and the ROI events as event pages.
 */
function * flyOnce (flyscan: FlyScanDevice, request: FlyScanRequest, stream: string): Plan<number> {
  yield * prepare(flyscan, request, { wait: true })
  const collectables: Obj[] = flyscan.collectables()
  if (collectables.length > 0) yield * declareStream(collectables, stream, true)
  const rois = roiStreamsOf(flyscan)
  for (const r of rois) yield * declareStream([r], roiStreamName(r, stream), true)
  yield * kickoff(flyscan, { wait: true })
  if (rois.length === 0) return yield * collectWhileCompleting([flyscan], { flushPeriod: FLY_FLUSH_PERIOD_S, streamName: stream, collectables })
  const group = newGroup('complete')
  const status = yield * complete(flyscan, { group })
  let documents = 0
  const collectAll = function * (): Plan<number> {
    let n = yield * collect(collectables, stream)
    for (const r of rois) n += yield * collect([r], roiStreamName(r, stream))
    return n
  }
  while (!status.done) {
    yield * sleep(FLY_FLUSH_PERIOD_S)
    documents += yield * collectAll()
  }
  yield * wait(group)
  return documents + (yield * collectAll())
}

function flyPlan (flyscan: FlyScanDevice, body: () => Plan<unknown>, md: PlanMetadata): Plan<string> {
  return stageWrapper(runWrapper(body(), md), [flyscan])
}

export interface TomoFlyArgs {
  readonly numImages: number
  readonly scanTime: number
  readonly startDeg?: number
  readonly exposureTime?: number
}

/** tomo_fly(numImages, scanTime, startDeg = 0, exposureTime?): a tomography fly scan over 180°. */
export function tomoFly (flyscan: FlyScanDevice, args: TomoFlyArgs, md: PlanMetadata = {}): Plan<string> {
  checkFlyScan(flyscan, 'tomo_fly')
  const request: FlyScanRequest = {
    kind: 'tomography',
    numImages: args.numImages,
    scanTime: args.scanTime,
    startDeg: args.startDeg ?? 0,
    ...(args.exposureTime === undefined ? {} : { exposureTime: args.exposureTime })
  }
  checkFlyScanRequest(request)
  const planArgs = { num_images: request.numImages, scan_time: request.scanTime, start_deg: request.startDeg, exposure_time: args.exposureTime ?? null }
  return flyPlan(flyscan, () => flyOnce(flyscan, request, 'primary'),
    { plan_name: 'tomo_fly', plan_args: planArgs, plan_type: 'generator', ...md })
}

export interface XasFlyArgs {
  readonly npoints: number
  readonly totalTime: number
  readonly startE: number
  readonly endE: number
  readonly exposureTime?: number
}

/** xas_fly(npoints, totalTime, startE, endE): an XAS fly scan, one PandA row (and one frame per camera) per point. */
export function xasFly (flyscan: FlyScanDevice, args: XasFlyArgs, md: PlanMetadata = {}): Plan<string> {
  checkFlyScan(flyscan, 'xas_fly')
  const request: FlyScanRequest = {
    kind: 'xas',
    npoints: args.npoints,
    totalTime: args.totalTime,
    startE: args.startE,
    endE: args.endE,
    ...(args.exposureTime === undefined ? {} : { exposureTime: args.exposureTime })
  }
  checkFlyScanRequest(request)
  const planArgs = { npoints: request.npoints, total_time: request.totalTime, start_e: request.startE, end_e: request.endE, exposure_time: args.exposureTime ?? null }
  return flyPlan(flyscan, () => flyOnce(flyscan, request, 'primary'),
    { plan_name: 'xas_fly', plan_args: planArgs, plan_type: 'generator', ...md })
}

export interface DarkFlatArgs {
  readonly numDark: number
  readonly numFlat: number
  readonly exposureTime: number
  /** A shutter (any movable: 0 closes, 1 opens); without one the frames are taken as the beam is. */
  readonly shutter?: Obj
}

/** dark_flat(numDark, numFlat, exposureTime, shutter?): dark frames (shutter closed), then flat frames (open). */
export function darkFlat (flyscan: FlyScanDevice, args: DarkFlatArgs, md: PlanMetadata = {}): Plan<string> {
  checkFlyScan(flyscan, 'dark_flat')
  let shutter: Movable<unknown> | undefined
  if (args.shutter !== undefined) {
    if (!isMovable(args.shutter)) throw badInput(`dark_flat: shutter ${describeArg(args.shutter)} is not movable (it needs set())`)
    shutter = args.shutter
  }
  const dark: FlyScanRequest = { kind: 'still', frames: args.numDark, exposureTime: args.exposureTime, label: 'dark' }
  const flat: FlyScanRequest = { kind: 'still', frames: args.numFlat, exposureTime: args.exposureTime, label: 'flat' }
  checkFlyScanRequest(dark)
  checkFlyScanRequest(flat)
  function * body (): Plan<void> {
    if (shutter !== undefined) yield * absSet(shutter, 0, { wait: true })
    yield * flyOnce(flyscan, dark, 'dark')
    if (shutter !== undefined) yield * absSet(shutter, 1, { wait: true })
    yield * flyOnce(flyscan, flat, 'flat')
  }
  const planArgs = { num_dark: args.numDark, num_flat: args.numFlat, exposure_time: args.exposureTime, shutter: shutter === undefined ? null : describeArg(shutter) }
  return flyPlan(flyscan, body, { plan_name: 'dark_flat', plan_args: planArgs, plan_type: 'generator', ...md })
}

export interface EnergyCalibrationArgs {
  readonly npoints: number
  /** Seconds to cross the range (default 2). */
  readonly totalTime?: number
  /** Half-width of the scan around the reference edge (default: the coordinator's calibrationRange). */
  readonly range?: number
}

/** A coordinator configured for energy calibration (FlyScan with calibrationEdge). */
interface HasCalibration {
  readonly calibration: (Obj & { readonly reference: { readonly edge: number, readonly range: number } }) | undefined
}

/**
 * energy_calibration(npoints, totalTime = 2, range?): an XAS fly scan from edge + range down to edge − range over the
 * coordinator's reference edge (calibrationEdge), then the edge fitted in the PandA's absorption; the stream
 * `calibration` gets one event with the offset (fitted e0 − reference).
 */
export function energyCalibration (flyscan: FlyScanDevice, args: EnergyCalibrationArgs, md: PlanMetadata = {}): Plan<string> {
  checkFlyScan(flyscan, 'energy_calibration')
  const calibration = (flyscan as Partial<HasCalibration>).calibration
  if (calibration === undefined) {
    throw badInput(`energy_calibration: ${describeArg(flyscan)} has no reference edge (set calibrationEdge in its config entry)`)
  }
  const edge = calibration.reference.edge
  const range = args.range ?? calibration.reference.range
  if (typeof range !== 'number' || !(range > 0) || !Number.isFinite(range)) throw badInput(`energy_calibration: range ${describeArg(range)} must be a finite number > 0`)
  const request: FlyScanRequest = { kind: 'xas', npoints: args.npoints, totalTime: args.totalTime ?? 2, startE: edge + range, endE: edge - range }
  checkFlyScanRequest(request)
  function * body (): Plan<void> {
    yield * flyOnce(flyscan, request, 'primary')
    yield * declareStream([calibration as Obj], 'calibration', true)
    yield * collect([calibration as Obj], 'calibration')
  }
  const planArgs = { npoints: request.npoints, total_time: request.totalTime, edge, range }
  return flyPlan(flyscan, body, { plan_name: 'energy_calibration', plan_args: planArgs, plan_type: 'generator', ...md })
}
