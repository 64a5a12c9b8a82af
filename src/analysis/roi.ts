/**
 * Region-of-interest statistics over one camera frame: sum, mean, max, min and the intensity-weighted centroid of
 * each rectangle. Pure and allocation-free per pixel: one pass over each ROI's rows, accumulating in locals.
 *
 * Coordinates are frame pixels: column x (0 at the left), row y (0 at the top). Pixel (x, y) sits at the point
 * (x, y), so a single lit pixel at column 5, row 3 has its centroid at (5, 3).
 */
import { ErrorCode, FlyScanError } from '../errors.js'

/** A rectangle of the frame, in whole pixels. */
export interface RoiSpec {
  readonly name: string
  readonly x: number
  readonly y: number
  readonly width: number
  readonly height: number
}

export interface RoiStats {
  readonly name: string
  readonly sum: number
  readonly mean: number
  readonly max: number
  readonly min: number
  /** Intensity-weighted mean column and row, in frame pixels; NaN when the sum is 0. */
  readonly centroidX: number
  readonly centroidY: number
  /** Pixels in the ROI (width × height). */
  readonly pixels: number
}

/** Pixel types a camera frame may have (areaDetector NDUInt8, NDUInt16). */
export type FrameDtype = 'uint8' | 'uint16'
export type FrameView = Uint8Array | Uint16Array

export function bytesPerPixel (dtype: FrameDtype): 1 | 2 {
  return dtype === 'uint8' ? 1 : 2
}

/** The smallest rectangle holding every ROI (the rois must be valid and non-empty). */
export interface BoundingBox {
  readonly x: number
  readonly y: number
  readonly width: number
  readonly height: number
}

function isWhole (v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v)
}

/**
 * Checks `rois` against a `width` × `height` frame. Throws FLY_ERR_BAD_INPUT naming the ROI and the numbers: names
 * must be non-empty and unique, x, y whole and ≥ 0, width, height whole and ≥ 1, and the rectangle inside the frame.
 */
export function validateRois (rois: readonly RoiSpec[], width: number, height: number): void {
  if (!isWhole(width) || !isWhole(height) || width < 1 || height < 1) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `frame size ${width}×${height} is not a positive whole number of pixels`, { details: { width, height } })
  }
  const seen = new Set<string>()
  for (const [i, roi] of rois.entries()) {
    const name = typeof roi.name === 'string' ? roi.name : ''
    const what = name === '' ? `ROI #${i}` : `ROI '${name}'`
    if (name === '') throw new FlyScanError(ErrorCode.BAD_INPUT, `${what} has no name`, { details: { index: i } })
    if (seen.has(name)) throw new FlyScanError(ErrorCode.BAD_INPUT, `${what} is named twice (ROI names must be unique)`, { details: { name } })
    seen.add(name)
    const { x, y, width: w, height: h } = roi
    if (!isWhole(x) || !isWhole(y) || x < 0 || y < 0) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `${what}: origin (${x}, ${y}) must be whole pixels ≥ 0`, { details: { name, x, y } })
    }
    if (!isWhole(w) || !isWhole(h) || w < 1 || h < 1) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `${what}: size ${w}×${h} must be whole pixels ≥ 1`, { details: { name, width: w, height: h } })
    }
    if (x + w > width || y + h > height) {
      throw new FlyScanError(ErrorCode.BAD_INPUT,
        `${what}: x ${x}..${x + w - 1}, y ${y}..${y + h - 1} goes outside the ${width}×${height} frame`,
        { details: { name, x, y, width: w, height: h, frameWidth: width, frameHeight: height } })
    }
  }
}

/** The bounding box of valid, non-empty `rois`. */
export function boundingBox (rois: readonly RoiSpec[]): BoundingBox {
  let x0 = Infinity
  let y0 = Infinity
  let x1 = -Infinity
  let y1 = -Infinity
  for (const r of rois) {
    if (r.x < x0) x0 = r.x
    if (r.y < y0) y0 = r.y
    if (r.x + r.width > x1) x1 = r.x + r.width
    if (r.y + r.height > y1) y1 = r.y + r.height
  }
  if (x0 === Infinity) return { x: 0, y: 0, width: 0, height: 0 }
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }
}

/** Statistics of every ROI over a whole frame; the ROIs are validated first. */
export function roiStats (frame: FrameView, width: number, height: number, rois: readonly RoiSpec[]): RoiStats[] {
  validateRois(rois, width, height)
  if (frame.length < width * height) {
    throw new FlyScanError(ErrorCode.BAD_INPUT,
      `frame has ${frame.length} pixels, fewer than its ${width}×${height} size`, { details: { pixels: frame.length, width, height } })
  }
  return roiStatsIn(frame, width, 0, 0, rois)
}

/**
 * Statistics of every ROI over a part of a frame: `box` holds the frame's pixels from column `originX`, row
 * `originY`, `boxWidth` pixels per row. The ROIs are in frame coordinates and must lie inside the box (not
 * checked here: the caller built the box from them).
 */
export function roiStatsIn (box: FrameView, boxWidth: number, originX: number, originY: number, rois: readonly RoiSpec[]): RoiStats[] {
  const out: RoiStats[] = []
  for (const roi of rois) out.push(statsOf(box, boxWidth, roi, originX, originY))
  return out
}

function statsOf (box: FrameView, stride: number, roi: RoiSpec, originX: number, originY: number): RoiStats {
  const x0 = roi.x - originX
  const y0 = roi.y - originY
  const w = roi.width
  const h = roi.height
  // Integer arithmetic is the fast path (measured: ~30% less time per frame than doubles). A row's Σv stays an int32
  // while width × the largest pixel value does, and its Σv·column while that times the largest column / 2 does too
  // (uint8 rows up to ~4100 pixels wide); otherwise those sums are doubles, exact up to 2^53.
  const maxValue = box.BYTES_PER_ELEMENT === 1 ? 0xff : 0xffff
  const intRowSum = w * maxValue <= 0x7fffffff
  const intRowSumX = intRowSum && maxValue * (w * (w - 1) / 2) <= 0x7fffffff
  let sum = 0
  let sumX = 0
  let sumY = 0
  let max = 0
  let min = maxValue
  for (let row = 0; row < h; row++) {
    const start = (y0 + row) * stride + x0
    let rowSum = 0
    let rowSumX = 0
    if (intRowSumX) {
      for (let col = 0; col < w; col++) {
        const v = (box[start + col] as number) | 0
        rowSum = (rowSum + v) | 0
        rowSumX = (rowSumX + v * col) | 0
        max = v > max ? v : max
        min = v < min ? v : min
      }
    } else if (intRowSum) {
      for (let col = 0; col < w; col++) {
        const v = (box[start + col] as number) | 0
        rowSum = (rowSum + v) | 0
        rowSumX += v * col
        max = v > max ? v : max
        min = v < min ? v : min
      }
    } else {
      for (let col = 0; col < w; col++) {
        const v = box[start + col] as number
        rowSum += v
        rowSumX += v * col
        max = v > max ? v : max
        min = v < min ? v : min
      }
    }
    sum += rowSum
    sumX += rowSumX
    sumY += rowSum * row
  }
  const pixels = w * h
  return {
    name: roi.name,
    sum,
    mean: sum / pixels,
    max,
    min,
    centroidX: sum === 0 ? Number.NaN : roi.x + sumX / sum,
    centroidY: sum === 0 ? Number.NaN : roi.y + sumY / sum,
    pixels
  }
}
