/**
 * What one analysis task is, as it crosses into a pool thread, and the pure function that runs it. The piscina task
 * file (workers/analysis-task.ts) only calls `runAnalysisTask`; tests call it directly without a thread.
 *
 * A task never throws across the thread boundary: a failure comes back as `{ ok: false, error }` in wire form, since
 * structured clone would drop a FlyScanError's code (src/errors.ts), and the pool rebuilds it with `fromWire`.
 */
import { ErrorCode, FlyScanError, toWire, type WireError } from '../errors.js'
import { fitEdge, type EdgeFit, type EdgeFitOptions } from './edge-fit.js'
import { roiStatsIn, validateRois, type BoundingBox, type FrameDtype, type RoiSpec, type RoiStats } from './roi.js'

/**
 * ROI statistics over a bounding box that the pool copied into `buffer` from byte 0: `box.width` × `box.height`
 * pixels of `dtype`, row after row, the frame's pixel (box.x, box.y) first. The ROIs are in frame coordinates.
 */
export interface RoiTask {
  readonly kind: 'roi'
  readonly buffer: SharedArrayBuffer
  readonly dtype: FrameDtype
  readonly box: BoundingBox
  readonly rois: readonly RoiSpec[]
}

export interface EdgeFitTask {
  readonly kind: 'edge-fit'
  readonly energies: Float64Array
  readonly mu: Float64Array
  readonly options: EdgeFitOptions
}

/** Answers at once: a pool thread that answers has loaded the task file and run its warm-up. */
export interface PingTask {
  readonly kind: 'ping'
}

export type AnalysisTask = RoiTask | EdgeFitTask | PingTask

export type AnalysisTaskResult =
  | { readonly ok: true, readonly kind: 'roi', readonly stats: RoiStats[] }
  | { readonly ok: true, readonly kind: 'edge-fit', readonly fit: EdgeFit }
  | { readonly ok: true, readonly kind: 'ping' }
  | { readonly ok: false, readonly error: WireError }

function runRoi (task: RoiTask): RoiStats[] {
  const { box, dtype, buffer } = task
  const pixels = box.width * box.height
  const bytes = pixels * (dtype === 'uint8' ? 1 : 2)
  if (bytes > buffer.byteLength) {
    throw new FlyScanError(ErrorCode.BAD_INPUT,
      `roi task: a ${box.width}×${box.height} ${dtype} box needs ${bytes} bytes, the buffer has ${buffer.byteLength}`,
      { details: { bytes, bufferBytes: buffer.byteLength } })
  }
  // The ROIs must lie inside the box: checked as if the box were a frame whose origin is (box.x, box.y).
  validateRois(task.rois.map((r) => ({ ...r, x: r.x - box.x, y: r.y - box.y })), box.width, box.height)
  const view = dtype === 'uint8' ? new Uint8Array(buffer, 0, pixels) : new Uint16Array(buffer, 0, pixels)
  return roiStatsIn(view, box.width, box.x, box.y, task.rois)
}

export function runAnalysisTask (task: AnalysisTask): AnalysisTaskResult {
  try {
    switch (task.kind) {
      case 'roi':
        return { ok: true, kind: 'roi', stats: runRoi(task) }
      case 'edge-fit':
        return { ok: true, kind: 'edge-fit', fit: fitEdge(task.energies, task.mu, task.options) }
      case 'ping':
        return { ok: true, kind: 'ping' }
      default: {
        const unknown: never = task
        throw new FlyScanError(ErrorCode.PROTOCOL_MESSAGE,
          `analysis task: unknown kind ${JSON.stringify((unknown as { kind?: unknown }).kind)}`)
      }
    }
  } catch (err) {
    return { ok: false, error: toWire(err) }
  }
}

/**
 * Runs the ROI loops and the edge fit on small synthetic inputs until V8 has optimised them, so that a new pool
 * thread's first real frames are not run by the interpreter (measured here: the first two 728×544 uint16 frames took
 * 12-15 ms each in a cold thread, against ~1 ms once optimised). The task file calls it once as it loads (~50 ms here).
 */
export function warmUp (): void {
  // 320 pixels wide: uint8 rows take the all-int32 path, uint16 rows the int32-sum path; the 100-wide part takes the
  // all-int32 path for both. The wide-row double path (rows over 32768 uint16 pixels) is left cold.
  const width = 320
  const height = 32
  const rois: RoiSpec[] = [{ name: 'all', x: 0, y: 0, width, height }, { name: 'part', x: 10, y: 3, width: 100, height: 20 }]
  const u8 = new Uint8Array(width * height)
  const u16 = new Uint16Array(width * height)
  for (let i = 0; i < u8.length; i++) {
    u8[i] = (i * 7919) & 0xff
    u16[i] = (i * 7919) & 0xffff
  }
  for (let k = 0; k < 20; k++) {
    roiStatsIn(u8, width, 0, 0, rois)
    roiStatsIn(u16, width, 0, 0, rois)
  }
  const energies = Float64Array.from({ length: 200 }, (_, i) => i)
  const mu = energies.map((e) => 0.5 + Math.atan((e - 100.3) / 2) / Math.PI + 1e-3 * Math.sin(e * 12.9898))
  for (let k = 0; k < 3; k++) fitEdge(energies, mu)
}
