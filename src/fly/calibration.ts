/**
 * energy_calibration's analysis (docs/analysis.md, "Energy calibration"): after an XAS fly scan over a reference
 * edge, read mu = ln(FMC_IN.VAL1.Mean / FMC_IN.VAL2.Mean) from the PandA file the scan wrote, fit the edge in an
 * AnalysisPool thread (fitEdge), and publish the offset (fitted e0 − reference) as one event of the stream
 * `calibration`.
 *
 * The energy of row k is the middle of its clock period: startE + (k + 0.5)·(endE − startE)/npoints (the PCOMP
 * window opens at startE and the CLOCK inside it makes one row per period, docs/fly-scans.md). Rows with I0 or It
 * ≤ 0 are left out. The file is read after the scan, once: a few datasets of npoints doubles, a few milliseconds.
 * The fit runs in the pool, so the supervisor's event loop only waits for it.
 */
import h5wasm from 'h5wasm/node'
import { AnalysisPool, type EdgeFit } from '../analysis/index.js'
import type { Collectable, DataKey, PartialEvent } from '../devices/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'

/** The reference edge (degrees, as TST's XAS plans pass energies) and the half-width of the scan around it. */
export interface CalibrationReference {
  readonly edge: number
  readonly range: number
}

/** The scan the calibration fits: where its PandA file is and its energy axis. */
export interface CalibrationScan {
  readonly file: string
  readonly startE: number
  readonly endE: number
  readonly npoints: number
  /** Encoder counts per degree: with it, each row's angle is CALC1.OUT.Mean converted to degrees. */
  readonly countsPerDeg?: number
}

export interface CalibrationResult {
  readonly reference: number
  readonly e0: number
  /** e0 − reference. */
  readonly offset: number
  readonly width: number
  readonly stepHeight: number
  readonly residualRms: number
  readonly points: number
  readonly file: string
  /** Where the rows' angles came from: CALC1.OUT.Mean in degrees, or the nominal axis (no such column). */
  readonly axis: 'encoder' | 'nominal'
}

export const I0_DATASET = 'FMC_IN.VAL1.Mean'
export const IT_DATASET = 'FMC_IN.VAL2.Mean'
export const ANGLE_DATASET = 'CALC1.OUT.Mean'

/**
 * Each row's angle from CALC1.OUT.Mean (±INENC1.VAL, the sign depending on the encoder's polarity): counts / countsPerDeg
 * with the sign that puts the rows where the scan went. Undefined (use the nominal axis) when the column is absent or
 * neither sign lands within a tenth of the range of the nominal axis.
 */
function anglesFromCounts (counts: ArrayLike<number>, nominal: readonly number[], countsPerDeg: number, range: number): number[] | undefined {
  const n = Math.min(counts.length, nominal.length)
  if (n === 0 || !(countsPerDeg > 0)) return undefined
  let sumC = 0
  let sumE = 0
  for (let k = 0; k < n; k++) { sumC += counts[k] as number; sumE += nominal[k] as number }
  const meanDeg = sumC / n / countsPerDeg
  const meanE = sumE / n
  const sign = Math.abs(meanDeg - meanE) <= Math.abs(-meanDeg - meanE) ? 1 : -1
  if (Math.abs(sign * meanDeg - meanE) > range / 10) return undefined
  return Array.from({ length: n }, (_, k) => sign * (counts[k] as number) / countsPerDeg)
}

/** Reads I0 and It from a PandA file and returns each usable row's energy and mu. */
export async function readAbsorption (scan: CalibrationScan): Promise<{ energies: number[], mu: number[], axis: 'encoder' | 'nominal' }> {
  await h5wasm.ready
  let file: InstanceType<typeof h5wasm.File> | undefined
  try {
    file = new h5wasm.File(scan.file, 'r')
    const column = (name: string): ArrayLike<number> => {
      const d = file?.get(name)
      if (!(d instanceof h5wasm.Dataset)) {
        throw new FlyScanError(ErrorCode.BAD_INPUT, `energy calibration: ${scan.file} has no dataset ${name} (an XAS scan captures FMC_IN.VAL1 and VAL2 as Mean)`,
          { details: { file: scan.file, dataset: name } })
      }
      return d.value as ArrayLike<number>
    }
    const i0 = column(I0_DATASET)
    const it = column(IT_DATASET)
    const rows = Math.min(i0.length, it.length)
    const nominal = Array.from({ length: rows }, (_, k) => scan.startE + (k + 0.5) * (scan.endE - scan.startE) / scan.npoints)
    const angle = file.get(ANGLE_DATASET)
    const measured = angle instanceof h5wasm.Dataset && scan.countsPerDeg !== undefined
      ? anglesFromCounts(angle.value as ArrayLike<number>, nominal, scan.countsPerDeg, Math.abs(scan.endE - scan.startE))
      : undefined
    const axis = measured ?? nominal
    const energies: number[] = []
    const mu: number[] = []
    for (let k = 0; k < Math.min(rows, axis.length); k++) {
      const a = i0[k] as number
      const b = it[k] as number
      if (!(a > 0 && b > 0)) continue
      energies.push(axis[k] as number)
      mu.push(Math.log(a / b))
    }
    return { energies, mu, axis: measured === undefined ? 'nominal' : 'encoder' }
  } catch (err) {
    if (err instanceof FlyScanError) throw err
    throw new FlyScanError(ErrorCode.HDF5, `energy calibration: cannot read ${scan.file}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err, details: { file: scan.file } })
  } finally {
    file?.close()
  }
}

/** Reads the scan's absorption and fits the edge in a pool thread (a pool of its own unless one is given). */
export async function calibrate (reference: CalibrationReference, scan: CalibrationScan, pool?: AnalysisPool): Promise<CalibrationResult> {
  const { energies, mu, axis } = await readAbsorption(scan)
  const own = pool ?? new AnalysisPool({ roiBuffers: 1, roiBufferBytes: 2 })
  let fit: EdgeFit
  try {
    fit = await own.fitEdge(energies, mu)
  } finally {
    if (pool === undefined) await own.close()
  }
  return {
    reference: reference.edge,
    e0: fit.e0,
    offset: fit.e0 - reference.edge,
    width: fit.width,
    stepHeight: fit.stepHeight,
    residualRms: fit.residualRms,
    points: fit.points,
    file: scan.file,
    axis
  }
}

const FIELDS = ['offset', 'e0', 'reference', 'width', 'step_height', 'residual_rms', 'points'] as const

/**
 * The `calibration` stream's one event: collect() fits the scan given to arm() and yields the result (once per
 * arm). `result` keeps the last one for the console and the --json summary.
 */
export class EnergyCalibration implements Collectable {
  readonly name: string
  readonly reference: CalibrationReference
  #scan: (() => CalibrationScan) | undefined
  #result: CalibrationResult | undefined

  constructor (name: string, reference: CalibrationReference) {
    if (!Number.isFinite(reference.edge)) throw new FlyScanError(ErrorCode.BAD_INPUT, `${name}: the reference edge ${reference.edge} must be a finite number`)
    if (!(reference.range > 0)) throw new FlyScanError(ErrorCode.BAD_INPUT, `${name}: the calibration range ${reference.range} must be > 0`)
    this.name = name
    this.reference = reference
  }

  get result (): CalibrationResult | undefined { return this.#result }

  /** The scan to fit at the next collect (its file is known once the scan has completed). */
  arm (scan: () => CalibrationScan): void {
    this.#scan = scan
    this.#result = undefined
  }

  async describeCollect (): Promise<Record<string, DataKey>> {
    return Object.fromEntries(FIELDS.map((f): [string, DataKey] => [`${this.name}_${f}`, {
      source: `tst-fly:${this.name}`, dtype: f === 'points' ? 'integer' : 'number', shape: [], precision: 5
    }]))
  }

  async * collect (): AsyncIterable<PartialEvent> {
    const scan = this.#scan
    if (scan === undefined) return
    this.#scan = undefined
    const r = await calibrate(this.reference, scan())
    this.#result = r
    const values = [r.offset, r.e0, r.reference, r.width, r.stepHeight, r.residualRms, r.points]
    const time = Date.now() / 1000
    const data = Object.fromEntries(FIELDS.map((f, i) => [`${this.name}_${f}`, values[i]]))
    yield { data, timestamps: Object.fromEntries(Object.keys(data).map((k) => [k, time])), time }
  }
}
