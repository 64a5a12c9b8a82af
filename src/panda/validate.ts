/**
 * Checks before arming: the numbers each TST fly scan derives from its parameters, and every rule that makes a
 * request impossible, each reported with the numbers involved (TST's own rules from its profile collection's
 * `tomo_demo_async` / `xas_demo_async`, plus what the PandA cannot do; ../../docs/panda-device.md lists them).
 *
 * Every function here is pure. `rejectIfInvalid` turns the problems into one FLY_ERR_BAD_INPUT listing all of them,
 * so a scientist fixes everything at once instead of one error per try.
 */
import { defaults } from '../../config/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'
import { PANDA_CLOCK_HZ } from './blocks.js'
import { SEQ_TABLE_MAX_ROWS, type SeqRow } from './seq-table.js'

/** Why a request was rejected; stable, for programs (the message is for people). */
export type ProblemCode =
  | 'BAD_PARAMETER'
  | 'STEP_NOT_INTEGER'
  | 'STEP_TOO_SMALL'
  | 'EXPOSURE_TOO_LONG'
  | 'EXPOSURE_AND_DEADTIME_TOO_LONG'
  | 'VELOCITY_ABOVE_VMAX'
  | 'POSITION_OUT_OF_RANGE'
  | 'EMPTY_WINDOW'
  | 'RUN_UP_TOO_SHORT'
  | 'PERIOD_TOO_SHORT'
  | 'DATA_RATE_TOO_HIGH'
  | 'TOO_MANY_ROWS'
  | 'EMPTY_TABLE'
  | 'TABLE_RUNS_FOREVER'

export interface ValidationProblem {
  readonly code: ProblemCode
  readonly message: string
}

/** What the trigger logic needs to know about the hardware around the PandA. */
export interface TriggerContext {
  /** Encoder counts per revolution of the rotation stage (TST: 8000, so 22.22 counts per degree). */
  readonly countsPerRev: number
  /**
   * +1 when INENC1.VAL counts up as the stage turns in the positive direction, −1 when it counts down (TST's saved
   * XAS layout flips the sign in CALC1, which is what −1 means).
   */
  readonly encoderPolarity: 1 | -1
  /** The most the data port carries before `Data overrun` (DESIGN.md §6: 50-60 MB/s measured). */
  readonly maxDataRateBytesPerS: number
}

export function defaultTriggerContext (): TriggerContext {
  return {
    countsPerRev: defaults.panda.encoderCountsPerRev,
    encoderPolarity: 1,
    maxDataRateBytesPerS: defaults.panda.maxDataRateBytesPerS
  }
}

const INT32_MIN = -0x8000_0000
const INT32_MAX = 0x7fff_ffff
/** Integers closer than this to a whole number of counts are whole (TST: `round(step, 5)`). */
const COUNT_EPSILON = 1e-5

/** Numbers in messages: up to 6 significant digits, no exponent for ordinary sizes. */
export function fmt (x: number): string {
  if (Number.isInteger(x)) return String(x)
  return String(Number(x.toPrecision(6)))
}

function problem (code: ProblemCode, message: string): ValidationProblem {
  return { code, message }
}

function finite (x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x)
}

/** Shape checks shared by the scans: each failed check is a BAD_PARAMETER problem naming the parameter. */
class ParamCheck {
  readonly problems: ValidationProblem[] = []
  constructor (readonly what: string) {}

  positive (name: string, v: unknown, unit: string): void {
    if (!finite(v) || v <= 0) this.problems.push(problem('BAD_PARAMETER', `${this.what}: ${name} ${String(v)} must be a number > 0 ${unit}`))
  }

  nonNegative (name: string, v: unknown, unit: string): void {
    if (!finite(v) || v < 0) this.problems.push(problem('BAD_PARAMETER', `${this.what}: ${name} ${String(v)} must be a number ≥ 0 ${unit}`))
  }

  number (name: string, v: unknown, unit: string): void {
    if (!finite(v)) this.problems.push(problem('BAD_PARAMETER', `${this.what}: ${name} ${String(v)} must be a finite number of ${unit}`))
  }

  integer (name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): void {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.problems.push(problem('BAD_PARAMETER', `${this.what}: ${name} ${String(v)} must be an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}`))
    }
  }
}

function checkContext (c: ParamCheck, ctx: TriggerContext): void {
  c.integer('countsPerRev (config)', ctx.countsPerRev, 1)
  if (ctx.encoderPolarity !== 1 && ctx.encoderPolarity !== -1) {
    c.problems.push(problem('BAD_PARAMETER', `${c.what}: encoderPolarity ${String(ctx.encoderPolarity)} must be 1 or -1`))
  }
  c.positive('maxDataRateBytesPerS (config)', ctx.maxDataRateBytesPerS, 'bytes/s')
}

function velocityProblem (what: string, velocity: number, maxVelocity: number | undefined, span: string, timeName: string, degrees: number): ValidationProblem[] {
  if (maxVelocity === undefined || maxVelocity === 0 || velocity <= maxVelocity) return []
  return [problem('VELOCITY_ABOVE_VMAX',
    `${what}: ${span} needs the stage at ${fmt(velocity)} deg/s, above its VMAX of ${fmt(maxVelocity)} deg/s; ` +
    `the shortest ${timeName} is ${fmt(degrees / maxVelocity)} s`)]
}

/** A data-rate check: rows per second times bytes per row against what the data port carries. */
export function dataRateProblems (what: string, rowsPerS: number, rowBytes: number, ctx: TriggerContext): ValidationProblem[] {
  const rate = rowsPerS * rowBytes
  if (!(rate > ctx.maxDataRateBytesPerS)) return []
  return [problem('DATA_RATE_TOO_HIGH',
    `${what}: ${fmt(rowsPerS)} rows/s of ${rowBytes} bytes is ${fmt(rate / 1e6)} MB/s, more than the ${fmt(ctx.maxDataRateBytesPerS / 1e6)} MB/s ` +
    'the PandA data port carries before Data overrun')]
}

// ---------------------------------------------------------------------------------------------------------------
// Tomography: PCOMP steps over 180°

export interface TomographyRequest {
  /** Images over the 180°: one PCOMP pulse each, the first at startDeg and the last at startDeg + 180. */
  readonly numImages: number
  /** Seconds the stage takes for the 180° (it turns at 180 / scanTime deg/s). */
  readonly scanTime: number
  readonly startDeg: number
  /** Camera exposure (livetime) in seconds; TST's default is a third of the step time. */
  readonly exposureTime?: number
  /** Camera deadtime in seconds (DESIGN.md §7: 63 µs for a Manta G-125); 0 when absent. */
  readonly deadtime?: number
  /** The rotation motor's VMAX in deg/s; 0 or absent means no limit (as the motor record reads 0). */
  readonly maxVelocity?: number
}

export interface TomographyNumbers {
  readonly countsPerDeg: number
  /** countsPerRev / (2 (numImages − 1)): counts between pulses, before rounding. */
  readonly stepCountsExact: number
  readonly stepCounts: number
  /** startDeg in counts, rounded (TST truncates; rounding keeps the first image nearest the asked angle). */
  readonly startCounts: number
  /** Pulse width: half a step, at least 1 count (the camera triggers on the rising edge). */
  readonly widthCounts: number
  readonly velocityDegPerS: number
  /** TST's step time: scanTime / numImages (the exposure must not exceed it). */
  readonly stepTimeS: number
  /** The time between two triggers: scanTime / (numImages − 1). */
  readonly triggerPeriodS: number
  readonly exposureTimeS: number
  readonly deadtimeS: number
  readonly endDeg: number
}

/** The numImages nearest `n` for which 180° is a whole number of counts per step (none when there is no such). */
function nearestWholeSteps (halfRev: number, n: number): number[] {
  if (!Number.isInteger(halfRev)) return []
  let below: number | undefined
  let above: number | undefined
  for (let d = 1; d <= halfRev; d++) {
    if (halfRev % d !== 0 || halfRev / d < 2) continue
    if (d + 1 < n) below = d + 1
    else if (d + 1 > n && above === undefined) above = d + 1
  }
  return [below, above].filter((x): x is number => x !== undefined)
}

export function tomographyNumbers (r: TomographyRequest, ctx: TriggerContext): TomographyNumbers {
  const countsPerDeg = ctx.countsPerRev / 360
  const stepCountsExact = ctx.countsPerRev / (2 * (r.numImages - 1))
  const stepCounts = Math.round(stepCountsExact)
  const stepTimeS = r.scanTime / r.numImages
  return {
    countsPerDeg,
    stepCountsExact,
    stepCounts,
    startCounts: Math.round(r.startDeg * countsPerDeg),
    widthCounts: Math.max(1, Math.floor(stepCounts / 2)),
    velocityDegPerS: 180 / r.scanTime,
    stepTimeS,
    triggerPeriodS: r.scanTime / (r.numImages - 1),
    exposureTimeS: r.exposureTime ?? stepTimeS / 3,
    deadtimeS: r.deadtime ?? 0,
    endDeg: r.startDeg + 180
  }
}

/** Every reason a tomography request cannot run, with its numbers; and the numbers when the request is well formed. */
export function validateTomography (r: TomographyRequest, ctx: TriggerContext): { problems: ValidationProblem[], numbers?: TomographyNumbers } {
  const what = 'tomography'
  const c = new ParamCheck(what)
  checkContext(c, ctx)
  c.integer('numImages', r.numImages, 2)
  c.positive('scanTime', r.scanTime, 's')
  c.number('startDeg', r.startDeg, 'degrees')
  if (r.exposureTime !== undefined) c.positive('exposureTime', r.exposureTime, 's')
  if (r.deadtime !== undefined) c.nonNegative('deadtime', r.deadtime, 's')
  if (r.maxVelocity !== undefined) c.nonNegative('maxVelocity (VMAX)', r.maxVelocity, 'deg/s')
  if (c.problems.length > 0) return { problems: c.problems }

  const n = tomographyNumbers(r, ctx)
  const problems: ValidationProblem[] = []
  const halfRev = ctx.countsPerRev / 2
  if (Math.abs(n.stepCountsExact - n.stepCounts) > COUNT_EPSILON) {
    const near = nearestWholeSteps(halfRev, r.numImages)
    problems.push(problem('STEP_NOT_INTEGER',
      `${what}: ${fmt(ctx.countsPerRev)} counts/rev over 180° for ${r.numImages} images is ${fmt(halfRev)}/${r.numImages - 1} = ` +
      `${fmt(n.stepCountsExact)} encoder counts per pulse, which is not an integer (PCOMP steps in whole counts)` +
      (near.length > 0 ? `; the nearest numImages that work are ${near.join(' and ')}` : '')))
  } else if (n.stepCounts < 2) {
    problems.push(problem('STEP_TOO_SMALL',
      `${what}: ${r.numImages} images over 180° is ${n.stepCounts} count per pulse; a pulse needs at least 2 counts (1 high, 1 low)`))
  }
  if (n.exposureTimeS > n.stepTimeS) {
    problems.push(problem('EXPOSURE_TOO_LONG',
      `${what}: exposure time ${fmt(n.exposureTimeS)} s is longer than the step time ${fmt(n.stepTimeS)} s ` +
      `(scan time ${fmt(r.scanTime)} s / ${r.numImages} images)`))
  } else if (n.exposureTimeS + n.deadtimeS > n.triggerPeriodS) {
    problems.push(problem('EXPOSURE_AND_DEADTIME_TOO_LONG',
      `${what}: exposure ${fmt(n.exposureTimeS)} s + camera deadtime ${fmt(n.deadtimeS)} s = ${fmt(n.exposureTimeS + n.deadtimeS)} s ` +
      `does not fit in the ${fmt(n.triggerPeriodS)} s between triggers`))
  }
  problems.push(...velocityProblem(what, n.velocityDegPerS, r.maxVelocity, `180° in ${fmt(r.scanTime)} s`, 'scanTime', 180))
  const endCounts = n.startCounts + n.stepCounts * (r.numImages - 1) + n.widthCounts
  for (const [name, v] of [['start', n.startCounts], ['end', endCounts]] as const) {
    if (v < INT32_MIN || v > INT32_MAX) {
      problems.push(problem('POSITION_OUT_OF_RANGE', `${what}: the ${name} position ${v} counts is outside PCOMP's int32 range`))
    }
  }
  return { problems, numbers: n }
}

// ---------------------------------------------------------------------------------------------------------------
// XAS: a PCOMP window over the energy range, a CLOCK inside it

export interface XasRequest {
  /** Rows (clock periods) over the window. */
  readonly npoints: number
  /** Seconds the stage takes to cross the window. */
  readonly totalTime: number
  /** Window start and end, as angles of the stage (TST's plans pass energies through as degrees). */
  readonly startDeg: number
  readonly endDeg: number
  /**
   * Degrees between where PCOMP is enabled (at kickoff) and the window start: the plan parks the stage this far
   * before startDeg. Default defaults.panda.xasRunUpDeg (TST's `pre_start_deg`, 5°).
   */
  readonly runUpDeg?: number
  /** Low time at the end of each clock period, in seconds (TST: 1 µs). */
  readonly clockResetTime?: number
  /** A camera on the TTLOUT: its exposure and deadtime must fit in a clock period. */
  readonly exposureTime?: number
  readonly deadtime?: number
  readonly maxVelocity?: number
}

export interface XasNumbers {
  readonly countsPerDeg: number
  /** +1 when the stage turns positive across the window, −1 when negative. */
  readonly direction: 1 | -1
  /** PCOMP1.START (Relative): the run-up in counts. */
  readonly startCounts: number
  /** PCOMP1.WIDTH: the window in counts. */
  readonly widthCounts: number
  readonly velocityDegPerS: number
  readonly periodS: number
  readonly periodTicks: number
  readonly widthTicks: number
  readonly resetTicks: number
  readonly runUpDeg: number
  readonly deadtimeS: number
}

export function xasNumbers (r: XasRequest, ctx: TriggerContext): XasNumbers {
  const countsPerDeg = ctx.countsPerRev / 360
  const span = Math.abs(r.endDeg - r.startDeg)
  const runUpDeg = r.runUpDeg ?? defaults.panda.xasRunUpDeg
  const periodS = r.totalTime / r.npoints
  const periodTicks = Math.round(periodS * PANDA_CLOCK_HZ)
  const resetTicks = Math.max(1, Math.round((r.clockResetTime ?? defaults.panda.xasClockResetTimeS) * PANDA_CLOCK_HZ))
  return {
    countsPerDeg,
    direction: r.endDeg >= r.startDeg ? 1 : -1,
    startCounts: Math.round(runUpDeg * countsPerDeg),
    widthCounts: Math.round(span * countsPerDeg),
    velocityDegPerS: span / r.totalTime,
    periodS,
    periodTicks,
    widthTicks: periodTicks - resetTicks,
    resetTicks,
    runUpDeg,
    deadtimeS: r.deadtime ?? 0
  }
}

export function validateXas (r: XasRequest, ctx: TriggerContext, rowBytes: number): { problems: ValidationProblem[], numbers?: XasNumbers } {
  const what = 'XAS'
  const c = new ParamCheck(what)
  checkContext(c, ctx)
  c.integer('npoints', r.npoints, 1)
  c.positive('totalTime', r.totalTime, 's')
  c.number('startDeg', r.startDeg, 'degrees')
  c.number('endDeg', r.endDeg, 'degrees')
  if (r.runUpDeg !== undefined) c.positive('runUpDeg', r.runUpDeg, 'degrees')
  if (r.clockResetTime !== undefined) c.positive('clockResetTime', r.clockResetTime, 's')
  if (r.exposureTime !== undefined) c.positive('exposureTime', r.exposureTime, 's')
  if (r.deadtime !== undefined) c.nonNegative('deadtime', r.deadtime, 's')
  if (r.maxVelocity !== undefined) c.nonNegative('maxVelocity (VMAX)', r.maxVelocity, 'deg/s')
  if (c.problems.length > 0) return { problems: c.problems }

  const n = xasNumbers(r, ctx)
  const problems: ValidationProblem[] = []
  if (n.widthCounts < 1) {
    problems.push(problem('EMPTY_WINDOW',
      `${what}: the window ${fmt(r.startDeg)}..${fmt(r.endDeg)}° is ${fmt(Math.abs(r.endDeg - r.startDeg) * n.countsPerDeg)} counts, less than one encoder count`))
  }
  if (n.startCounts < 1) {
    problems.push(problem('RUN_UP_TOO_SHORT',
      `${what}: a run-up of ${fmt(n.runUpDeg)}° is ${fmt(n.runUpDeg * n.countsPerDeg)} counts; PCOMP needs START ≥ 1 count (0 would open the window at enable)`))
  }
  if (n.widthTicks < 1) {
    problems.push(problem('PERIOD_TOO_SHORT',
      `${what}: ${fmt(r.totalTime)} s / ${r.npoints} points is a clock period of ${fmt(n.periodS)} s (${n.periodTicks} ticks of 8 ns), ` +
      `which leaves no high time after the ${n.resetTicks}-tick reset`))
  }
  if (r.exposureTime !== undefined && r.exposureTime + n.deadtimeS > n.periodS) {
    problems.push(problem('EXPOSURE_TOO_LONG',
      `${what}: exposure ${fmt(r.exposureTime)} s + camera deadtime ${fmt(n.deadtimeS)} s does not fit in the clock period ${fmt(n.periodS)} s ` +
      `(${fmt(r.totalTime)} s / ${r.npoints} points)`))
  }
  const span = Math.abs(r.endDeg - r.startDeg)
  problems.push(...velocityProblem(what, n.velocityDegPerS, r.maxVelocity, `${fmt(span)}° in ${fmt(r.totalTime)} s`, 'totalTime', span))
  if (n.periodS > 0) problems.push(...dataRateProblems(what, 1 / n.periodS, rowBytes, ctx))
  if (n.startCounts + n.widthCounts > INT32_MAX) {
    problems.push(problem('POSITION_OUT_OF_RANGE', `${what}: START + WIDTH = ${n.startCounts + n.widthCounts} counts is outside PCOMP's int32 range`))
  }
  return { problems, numbers: n }
}

// ---------------------------------------------------------------------------------------------------------------
// SEQ tables

export interface SeqTableRequest {
  readonly table: readonly SeqRow[]
  /** Times the whole table runs; 0 (forever) is refused, because the capture would never end. */
  readonly repeats: number
  /** PRESCALE in microseconds: the unit of TIME1 and TIME2. */
  readonly prescaleUs: number
}

export interface SeqTableNumbers {
  /** Falling edges of OUTA while the table runs: the rows PCAP captures when it triggers on OUTA falling. */
  readonly expectedRows: number
  /** Whether the table ends with OUTA high (the last row may or may not be captured as ACTIVE falls). */
  readonly endsHigh: boolean
  /** Seconds of phases, not counting waits for triggers. */
  readonly durationS: number
}

/**
 * OUTA during one run of a row: [phase 1 (when TIME1 > 0), phase 2]. Falling edges are counted across phases,
 * repeats and rows; outputs hold their value while a row waits for its trigger.
 */
export function seqTableNumbers (r: SeqTableRequest): SeqTableNumbers {
  let level = false
  let edges = 0
  let units = 0
  for (const row of r.table) {
    const phases = row.time1 > 0 ? [row.outa1, row.outa2] : [row.outa2]
    let within = 0
    for (let k = 1; k < phases.length; k++) if (phases[k - 1] === true && phases[k] === false) within++
    const wrap = phases[phases.length - 1] === true && phases[0] === false ? 1 : 0
    const first = level && phases[0] === false ? 1 : 0
    const reps = row.repeats
    if (reps > 0) {
      edges += first + reps * within + (reps - 1) * wrap
      level = phases[phases.length - 1] ?? false
    }
    units += reps * (row.time1 + row.time2)
  }
  // Later runs of the table start from the level the previous run ended with.
  const onceEdges = edges
  let total = onceEdges
  if (r.repeats > 1 && r.table.length > 0) {
    const firstRow = r.table.find((row) => row.repeats > 0)
    const firstLevel = firstRow === undefined ? false : (firstRow.time1 > 0 ? firstRow.outa1 : firstRow.outa2)
    const carry = level && !firstLevel ? 1 : 0
    total = onceEdges * r.repeats + carry * (r.repeats - 1)
  }
  const tick = 1 / PANDA_CLOCK_HZ
  const unitS = Math.max(tick, r.prescaleUs * 1e-6)
  return { expectedRows: total, endsHigh: level, durationS: units * unitS * Math.max(1, r.repeats) }
}

export function validateSeqTable (r: SeqTableRequest, ctx: TriggerContext, rowBytes: number): { problems: ValidationProblem[], numbers?: SeqTableNumbers } {
  const what = 'SEQ table'
  const c = new ParamCheck(what)
  checkContext(c, ctx)
  c.integer('repeats', r.repeats, 0, 0xffff_ffff)
  c.nonNegative('prescaleUs', r.prescaleUs, 'µs')
  if (!Array.isArray(r.table)) c.problems.push(problem('BAD_PARAMETER', `${what}: table must be an array of rows`))
  if (c.problems.length > 0) return { problems: c.problems }

  const problems: ValidationProblem[] = []
  if (r.table.length === 0) problems.push(problem('EMPTY_TABLE', `${what}: the table has no rows`))
  if (r.table.length > SEQ_TABLE_MAX_ROWS) {
    problems.push(problem('TOO_MANY_ROWS', `${what}: ${r.table.length} rows, but the SEQ block holds at most ${SEQ_TABLE_MAX_ROWS}`))
  }
  const forever = r.table.map((row, i) => row.repeats === 0 ? i : -1).filter((i) => i >= 0)
  if (r.repeats === 0) problems.push(problem('TABLE_RUNS_FOREVER', `${what}: repeats 0 runs the table forever, so the capture would never end`))
  if (forever.length > 0) {
    problems.push(problem('TABLE_RUNS_FOREVER',
      `${what}: rows[${forever.slice(0, 5).join('], rows[')}]${forever.length > 5 ? ` and ${forever.length - 5} more` : ''} ` +
      'have repeats 0, which runs forever, so the capture would never end'))
  }
  if (problems.length > 0) return { problems }
  const n = seqTableNumbers(r)
  if (n.durationS > 0) problems.push(...dataRateProblems(what, n.expectedRows / n.durationS, rowBytes, ctx))
  return { problems, numbers: n }
}

/** Throws one FLY_ERR_BAD_INPUT listing every problem (details: logic, count, codes), or returns. */
export function rejectIfInvalid (logic: string, problems: readonly ValidationProblem[], device = 'PandA'): void {
  if (problems.length === 0) return
  const list = problems.map((p, i) => problems.length === 1 ? p.message : `(${i + 1}) ${p.message}`).join('; ')
  throw new FlyScanError(ErrorCode.BAD_INPUT,
    `${device}: ${logic} scan rejected before arming: ${problems.length === 1 ? '' : `${problems.length} problems: `}${list}`,
    { details: { logic, problems: problems.length, codes: [...new Set(problems.map((p) => p.code))].join(',') } })
}
