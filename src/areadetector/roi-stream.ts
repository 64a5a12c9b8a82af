/**
 * Live ROI events of one camera (docs/analysis.md, "ROI events during a fly scan"). The frame-writer worker owns an
 * AnalysisPool: as it writes each frame it hands the frame's slot to the pool, which copies only the ROIs' box out.
 * The small per-frame results come up to the supervisor in batches (`roi` messages) and land here. The plans
 * declare this object as the stream `<camera>_roi` and collect it as event pages while the scan runs.
 *
 * Data keys, for a camera `manta1` with an ROI `spot`:
 *   manta1_roi_unique_id          the frame's UniqueId
 *   manta1_roi_frame              the frame's index in the camera file (0 = first frame since prepare)
 *   manta1_roi_energy             XAS only: the point's energy, startE + (k + 0.5)·(endE − startE)/npoints
 *   manta1_roi_spot_sum/_mean/_max/_cx/_cy   the statistics of src/analysis/roi.ts (centroid NaN when the sum is 0)
 *
 * Frames the pool could not take (every buffer busy) are skipped and counted, never waited for.
 */
import { ErrorCode, FlyScanError } from '../errors.js'
import { validateRois, type AnalysisCounters, type RoiSpec } from '../analysis/index.js'
import type { Collectable, DataKey, PartialEventPage } from '../devices/index.js'
import type { RoiRow } from '../protocol/index.js'

/** Statistics published per ROI, in this order, with their key suffixes. */
export const ROI_FIELDS = ['sum', 'mean', 'max', 'cx', 'cy'] as const

/** The XAS energy axis of a scan: row k (and frame k) is the point startE + (k + 0.5)·(endE − startE)/npoints. */
export interface RoiEnergyAxis {
  readonly startE: number
  readonly endE: number
  readonly npoints: number
}

/** The energy of point k of an XAS scan: the middle of its interval. */
export function pointEnergy (axis: RoiEnergyAxis, k: number): number {
  return axis.startE + (k + 0.5) * (axis.endE - axis.startE) / axis.npoints
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Parses the ADVimba option `rois`: `name:x,y,width,height` entries separated by `;` (for example
 * `spot:300,200,64,64;full:0,0,728,544`). Throws FLY_ERR_BAD_INPUT naming the device and the entry. The frame size
 * is checked later, when the camera's shape is known (validateRois).
 */
export function parseRois (text: string, device: string): RoiSpec[] {
  const bad = (entry: string, why: string): FlyScanError =>
    new FlyScanError(ErrorCode.BAD_INPUT, `ADVimba ${device}: rois entry '${entry}': ${why} (expected name:x,y,width,height; entries separated by ';')`,
      { details: { device, entry } })
  const entries = text.split(';').map((s) => s.trim()).filter((s) => s !== '')
  if (entries.length === 0) throw new FlyScanError(ErrorCode.BAD_INPUT, `ADVimba ${device}: rois '${text}' names no ROI`, { details: { device } })
  const rois: RoiSpec[] = []
  for (const entry of entries) {
    const colon = entry.indexOf(':')
    if (colon < 0) throw bad(entry, 'no name')
    const name = entry.slice(0, colon).trim()
    if (!NAME.test(name)) throw bad(entry, `the name '${name}' must be letters, digits and _ (it becomes part of data keys)`)
    const numbers = entry.slice(colon + 1).split(',').map((s) => s.trim())
    if (numbers.length !== 4) throw bad(entry, `${numbers.length} numbers instead of 4`)
    const [x, y, width, height] = numbers.map((s) => (/^\d+$/.test(s) ? Number(s) : NaN)) as [number, number, number, number]
    if (![x, y, width, height].every(Number.isInteger)) throw bad(entry, 'x, y, width and height must be whole pixel numbers ≥ 0')
    if (width < 1 || height < 1) throw bad(entry, `the size ${width}×${height} must be at least 1×1`)
    if (rois.some((r) => r.name === name)) throw bad(entry, `the name '${name}' is used twice`)
    rois.push({ name, x, y, width, height })
  }
  return rois
}

const NO_COUNTERS: AnalysisCounters = { submitted: 0, completed: 0, skipped: 0, failed: 0, inFlight: 0 }

/** EPICS timestamps count from 1990-01-01; Unix from 1970-01-01. */
const EPICS_EPOCH_S = 631152000

export class RoiStream implements Collectable {
  readonly rois: readonly RoiSpec[]
  readonly #camera: () => string
  #axis: RoiEnergyAxis | undefined
  /** Frame index of the first frame of the current scan (frames before it belong to an earlier prepare). */
  #base = 0
  /** One past the highest frame index received. */
  #seen = 0
  #pending: RoiRow[] = []
  #counters: AnalysisCounters = NO_COUNTERS
  #rowsReceived = 0
  #bound = false

  /** `camera` gives the camera's name (its data keys and stream are `<camera>_roi...`). */
  constructor (camera: () => string, rois: readonly RoiSpec[]) {
    if (rois.length === 0) throw new FlyScanError(ErrorCode.BAD_INPUT, `${camera()}: an ROI stream needs at least one ROI`)
    this.#camera = camera
    this.rois = rois.map((r) => ({ ...r }))
  }

  get name (): string { return `${this.#camera()}_roi` }

  /** A frame writer that feeds this stream has been given to the camera (only tst-fly's writer can). */
  get bound (): boolean { return this.#bound }

  /** Called by the frame writer that feeds this stream. */
  bind (): void { this.#bound = true }

  /** Checks the ROIs against the frame size (FLY_ERR_BAD_INPUT naming the camera and the ROI). */
  validate (width: number, height: number): void {
    try {
      validateRois(this.rois, width, height)
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err)
      throw new FlyScanError(ErrorCode.BAD_INPUT, `${this.#camera()}: rois: ${text}`, { cause: err, details: { device: this.#camera() } })
    }
  }

  /** A new scan: rows not yet collected are dropped; `axis` gives XAS points their energy. */
  prepare (axis: RoiEnergyAxis | undefined): void {
    this.#axis = axis
    this.#pending = []
    this.#base = this.#seen
  }

  /** Rows from the frame writer (in frame order) and the pool's counters. */
  push (rows: readonly RoiRow[], counters: AnalysisCounters): void {
    for (const r of rows) {
      this.#pending.push(r)
      this.#seen = Math.max(this.#seen, r.frame + 1)
    }
    this.#rowsReceived += rows.length
    this.#counters = counters
  }

  /** The pool's counters as last reported (skipped = frames not analysed because every buffer was busy). */
  counters (): AnalysisCounters & { readonly rows: number } {
    return { ...this.#counters, rows: this.#rowsReceived }
  }

  #keys (): string[] {
    const p = this.name
    return [`${p}_unique_id`, `${p}_frame`, ...(this.#axis === undefined ? [] : [`${p}_energy`]),
      ...this.rois.flatMap((r) => ROI_FIELDS.map((f) => `${p}_${r.name}_${f}`))]
  }

  async describeCollect (): Promise<Record<string, DataKey>> {
    const p = this.name
    const source = `tst-fly:${p}`
    const keys: Record<string, DataKey> = {
      [`${p}_unique_id`]: { source, dtype: 'integer', shape: [], dtype_numpy: '<i8' },
      [`${p}_frame`]: { source, dtype: 'integer', shape: [], dtype_numpy: '<i8' }
    }
    if (this.#axis !== undefined) keys[`${p}_energy`] = { source, dtype: 'number', shape: [], dtype_numpy: '<f8', precision: 4 }
    for (const r of this.rois) {
      for (const f of ROI_FIELDS) {
        keys[`${p}_${r.name}_${f}`] = { source: `${source}:${r.name}`, dtype: 'number', shape: [], dtype_numpy: '<f8', precision: f === 'sum' || f === 'max' ? 0 : 2 }
      }
    }
    return keys
  }

  /** One event page with the rows received since the last collect (none when there are none). */
  async * collectPages (): AsyncIterable<PartialEventPage> {
    const rows = this.#pending
    if (rows.length === 0) return
    this.#pending = []
    const keys = this.#keys()
    const data: Record<string, unknown[]> = Object.fromEntries(keys.map((k) => [k, []]))
    const time: number[] = []
    const p = this.name
    const column = (k: string): unknown[] => data[k] as unknown[]
    for (const row of rows) {
      const k = row.frame - this.#base
      time.push(row.epicsSec > 0 ? row.epicsSec + EPICS_EPOCH_S + row.epicsNsec / 1e9 : row.receivedS)
      column(`${p}_unique_id`).push(row.uniqueId)
      column(`${p}_frame`).push(k)
      if (this.#axis !== undefined) column(`${p}_energy`).push(pointEnergy(this.#axis, k))
      this.rois.forEach((r, i) => {
        const s = row.stats[i]
        const values = s === undefined ? [NaN, NaN, NaN, NaN, NaN] : [s.sum, s.mean, s.max, s.centroidX, s.centroidY]
        ROI_FIELDS.forEach((f, j) => column(`${p}_${r.name}_${f}`).push(values[j]))
      })
    }
    const timestamps = Object.fromEntries(keys.map((k) => [k, time]))
    yield { data, timestamps, time }
  }
}
