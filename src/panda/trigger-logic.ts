/**
 * Trigger logic for TST's fly scans (ophyd-async's StaticPcompTriggerLogic / StaticSeqTableTriggerLogic, as pure
 * functions): each turns a scan's parameters into the PandA field writes that set it up, the writes that start and
 * stop it, what PCAP captures, and the numbers a plan and a timing report need. Nothing here talks to the box;
 * HDFPanda (device.ts) sends `writes` in one pipelined batch at prepare, `kickoffWrites` once PCAP is active, and
 * `stopWrites` when the capture has ended. ../../docs/panda-device.md shows both TST setups line by line.
 *
 * - tomography: PCOMP steps through 180° at constant speed; one pulse per image drives the camera (a TTLOUT) and
 *   PCAP.TRIG; PCAP captures the encoder and TS_TRIG per image and stops when PCOMP has made its pulses.
 * - xas: a PCOMP window over the scan range, relative to where the stage was parked; while the window is open, PCAP
 *   captures one row per CLOCK period (means of the angle and the ADC channels, bits, TS_TRIG).
 * - seq-table: a SEQ table; PCAP captures one row per falling edge of SEQ OUTA while the table runs.
 */
import {
  BLOCKS, PANDA_CLOCK_HZ, SECONDS_PER_UNIT, checkTableWrite, checkWrite,
  type PosCapture, type TimeUnits
} from './blocks.js'
import { encodeSeqTable } from './seq-table.js'
import {
  defaultTriggerContext, rejectIfInvalid, validateSeqTable, validateTomography, validateXas,
  type SeqTableRequest, type TomographyRequest, type TriggerContext, type ValidationProblem, type XasRequest
} from './validate.js'

/** One write of a setup: `TARGET=value` (a field, an attribute, or `*CAPTURE=`), or a table (`TARGET<`). */
export type PandaWrite =
  | { readonly kind: 'put', readonly target: string, readonly value: string }
  | { readonly kind: 'table', readonly target: string, readonly words: Uint32Array }

/** A field to capture and how (`INENC1.VAL` / `Value`, `CALC1.OUT` / `Mean`, `PCAP.BITS1` / `Value`). */
export interface CaptureField {
  readonly field: string
  readonly capture: PosCapture
}

/** One dataset the capture produces: `/INENC1.VAL.Value` in the file, SCALED dtypes. */
export interface CapturedDataset {
  /** `INENC1.VAL.Value`: the dataset path without its leading `/`. */
  readonly name: string
  readonly field: string
  readonly capture: string
  /** uint32 for the PCAP.BITSn words, float64 for everything else (SCALED data). */
  readonly dtype: 'uint32' | 'float64'
}

export type TriggerLogicName = 'tomography' | 'xas' | 'seq-table'

/** Where and how fast the plan must move the stage for the setup to trigger as asked. */
export interface ScanMotion {
  readonly startDeg: number
  readonly endDeg: number
  readonly velocityDegPerS: number
  /** XAS: PCOMP opens the window this far from where the stage sits at kickoff. */
  readonly runUpDeg?: number
}

export interface PandaTriggerSetup {
  readonly logic: TriggerLogicName
  /** Written in this order, pipelined, at prepare. */
  readonly writes: readonly PandaWrite[]
  /** Written once PCAP.ACTIVE is 1 (kickoff): what starts the trigger source. */
  readonly kickoffWrites: readonly PandaWrite[]
  /** Written once the capture has ended, and on stop: what disables the trigger source. */
  readonly stopWrites: readonly PandaWrite[]
  readonly capture: readonly CaptureField[]
  readonly datasets: readonly CapturedDataset[]
  /** Bytes per row the data port sends (SCALED). */
  readonly rowBytes: number
  /** Rows the capture should end with; undefined when it cannot be known. */
  readonly expectedRows: number | undefined
  /** How far the row count may differ from expectedRows (XAS: the clock's phase at the window edges). */
  readonly rowTolerance: number
  /** Seconds the capture should last once the trigger source runs (motion across the range, or the table). */
  readonly captureTimeS: number
  readonly motion: ScanMotion | undefined
  /** The derived numbers (counts, ticks, times), for reports and docs. */
  readonly numbers: Readonly<Record<string, number>>
}

/** Block instances a setup uses; each defaults to 1. */
interface Instances {
  readonly pcomp?: number
  readonly encoder?: number
  readonly ttlout?: number
}

export interface TomographyParams extends TomographyRequest, Instances {}

export interface XasParams extends XasRequest, Instances {
  readonly clock?: number
  readonly calc?: number
  /** FMC_IN channels captured as Mean (default [1, 2]). */
  readonly adcChannels?: readonly number[]
}

export type SeqInput = 'BITA' | 'BITB' | 'BITC' | 'POSA' | 'POSB' | 'POSC'

export interface SeqTableParams extends SeqTableRequest {
  readonly seq?: number
  readonly ttlout?: number
  /** What PCAP captures besides PCAP.TS_TRIG (default: INENC1.VAL Mean). */
  readonly capture?: readonly CaptureField[]
  /** The table's trigger inputs, e.g. `{ POSA: 'INENC1.VAL', BITA: 'TTLIN1.VAL' }`. */
  readonly inputs?: Readonly<Partial<Record<SeqInput, string>>>
}

/** What HDFPanda.prepare takes: the logic and its parameters, and optionally a bound on complete(). */
export type PandaFlyInfo = (
  | ({ readonly logic: 'tomography' } & TomographyParams)
  | ({ readonly logic: 'xas' } & XasParams)
  | ({ readonly logic: 'seq-table' } & SeqTableParams)
) & { readonly completeTimeoutMs?: number }

const put = (target: string, value: string | number): PandaWrite => ({ kind: 'put', target, value: String(value) })

/** `PCOMP1.START=4000`; a table write as `SEQ1.TABLE< (8 words)`. */
export function writeLine (w: PandaWrite): string {
  return w.kind === 'put' ? `${w.target}=${w.value}` : `${w.target}< (${w.words.length} words)`
}

/** A time field's value in `units`, from a whole number of 8 ns ticks, without floating-point noise (10, 9.999). */
export function timeValue (ticks: number, units: TimeUnits): number {
  return Number((ticks / PANDA_CLOCK_HZ / SECONDS_PER_UNIT[units]).toPrecision(12))
}

/** The datasets a capture list produces (`Min Max Mean` gives three), and their dtypes. */
export function capturedDatasets (capture: readonly CaptureField[]): CapturedDataset[] {
  const out: CapturedDataset[] = []
  for (const c of capture) {
    for (const one of c.capture.split(' ')) {
      if (one === 'No') continue
      out.push({ name: `${c.field}.${one}`, field: c.field, capture: one, dtype: /^PCAP\.BITS\d$/.test(c.field) ? 'uint32' : 'float64' })
    }
  }
  return out
}

function rowBytesOf (datasets: readonly CapturedDataset[]): number {
  return datasets.reduce((n, d) => n + (d.dtype === 'uint32' ? 4 : 8), 0)
}

function captureWrites (capture: readonly CaptureField[]): PandaWrite[] {
  return capture.map((c) => put(`${c.field}.CAPTURE`, c.capture))
}

/** Problems with the block instance numbers a scan names (PCOMP3 does not exist on a PandABox). */
function instanceProblems (what: string, named: ReadonlyArray<readonly [string, keyof typeof BLOCKS, number | undefined]>): ValidationProblem[] {
  const problems: ValidationProblem[] = []
  for (const [param, block, n] of named) {
    const count = BLOCKS[block].count
    if (n !== undefined && (!Number.isInteger(n) || n < 1 || n > count)) {
      problems.push({ code: 'BAD_PARAMETER', message: `${what}: ${param} ${String(n)} must be an instance number from 1 to ${count} (${block}1..${block}${count})` })
    }
  }
  return problems
}

/** Problems with a capture list: each field must be capturable, with a capture the box knows. */
function captureProblems (what: string, capture: readonly CaptureField[]): ValidationProblem[] {
  const problems: ValidationProblem[] = []
  for (const c of capture) {
    try {
      checkWrite(`${c.field}.CAPTURE`, c.capture)
    } catch (err) {
      problems.push({ code: 'BAD_PARAMETER', message: `${what}: capture ${c.field} ${c.capture}: ${(err as Error).message}` })
    }
  }
  return problems
}

/** Every write checked against the block table: a mistake in this file fails here, never on the box. */
function checked (writes: readonly PandaWrite[]): readonly PandaWrite[] {
  for (const w of writes) {
    if (w.kind === 'put') checkWrite(w.target, w.value)
    else checkTableWrite(w.target)
  }
  return writes
}

function finish (setup: PandaTriggerSetup): PandaTriggerSetup {
  checked(setup.writes)
  checked(setup.kickoffWrites)
  checked(setup.stopWrites)
  return setup
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * Tomography (TST's `tomo_demo_async`): N images over 180°, one PCOMP pulse each, starting at startDeg.
 *
 * - `PCOMP.STEP = countsPerRev / (2 (N − 1))` counts (8000 counts/rev: 4000 / (N − 1)), which must be whole;
 *   `START = round(startDeg × countsPerRev / 360)` counts, Absolute; `PULSES = N`; `WIDTH` = half a step.
 * - The direction follows the encoder: Positive when INENC counts up as the stage turns positive, else Negative
 *   with START negated (WIDTH and STEP stay positive, as PCOMP wants).
 * - `PCAP.ENABLE = PCOMPn.ACTIVE`, `PCAP.TRIG = PCOMPn.OUT` (Rising), `TTLOUTn.VAL = PCOMPn.OUT` (the camera).
 *   PCAP captures INENCn.VAL and PCAP.TS_TRIG (Value) per image, and the capture ends with `Ok` when PCOMP has
 *   made its N pulses and drops ACTIVE.
 * - The plan parks the stage before startDeg, then turns it at 180 / scanTime deg/s past startDeg + 180.
 */
export function tomographyTrigger (p: TomographyParams, ctx: TriggerContext = defaultTriggerContext()): PandaTriggerSetup {
  const P = `PCOMP${p.pcomp ?? 1}`
  const E = `INENC${p.encoder ?? 1}`
  const T = `TTLOUT${p.ttlout ?? 1}`
  const { problems, numbers: n } = validateTomography(p, ctx)
  problems.push(...instanceProblems('tomography', [['pcomp', 'PCOMP', p.pcomp], ['encoder', 'INENC', p.encoder], ['ttlout', 'TTLOUT', p.ttlout]]))
  rejectIfInvalid('tomography', problems)
  if (n === undefined) throw new Error('unreachable: validation passed without numbers')
  const capture: CaptureField[] = [{ field: `${E}.VAL`, capture: 'Value' }, { field: 'PCAP.TS_TRIG', capture: 'Value' }]
  const datasets = capturedDatasets(capture)
  const pol = ctx.encoderPolarity
  return finish({
    logic: 'tomography',
    writes: [
      put(`${P}.ENABLE`, 'ZERO'),
      put('*CAPTURE', ''),
      put(`${P}.INP`, `${E}.VAL`),
      put(`${P}.RELATIVE`, 'Absolute'),
      put(`${P}.DIR`, pol > 0 ? 'Positive' : 'Negative'),
      put(`${P}.PRE_START`, 0),
      put(`${P}.START`, pol * n.startCounts),
      put(`${P}.WIDTH`, n.widthCounts),
      put(`${P}.STEP`, n.stepCounts),
      put(`${P}.PULSES`, p.numImages),
      put('PCAP.ENABLE', `${P}.ACTIVE`),
      put('PCAP.GATE', 'ONE'),
      put('PCAP.TRIG', `${P}.OUT`),
      put('PCAP.TRIG_EDGE', 'Rising'),
      put(`${T}.VAL`, `${P}.OUT`),
      ...captureWrites(capture)
    ],
    kickoffWrites: [put(`${P}.ENABLE`, 'ONE')],
    stopWrites: [put(`${P}.ENABLE`, 'ZERO')],
    capture,
    datasets,
    rowBytes: rowBytesOf(datasets),
    expectedRows: p.numImages,
    rowTolerance: 0,
    captureTimeS: p.scanTime,
    motion: { startDeg: p.startDeg, endDeg: n.endDeg, velocityDegPerS: n.velocityDegPerS },
    numbers: { ...n }
  })
}

/**
 * XAS (TST's `xas_demo_async` and saved layout): a PCOMP window from startDeg to endDeg, relative to where the
 * stage is parked (runUpDeg before startDeg) when PCOMP is enabled at kickoff, with a CLOCK inside it.
 *
 * - `CALCn = ±INENCn.VAL` so that CALCn.OUT counts up as the stage crosses the window (TST's stage needs the sign
 *   flip, `TYPEA=-Value`: encoderPolarity −1); `PCOMPn.INP = CALCn.OUT`, Relative, Positive,
 *   `START` = the run-up in counts, `WIDTH` = the window in counts, `PULSES = 1`.
 * - `CLOCKn.ENABLE = PCOMPn.OUT`: the clock (and the camera on TTLOUTn) runs only while the window is open, its first
 *   period starting as the window opens; `PERIOD = totalTime / npoints`, `WIDTH = PERIOD − clockResetTime` (in ms,
 *   whole 8 ns ticks); `PCAP.GATE = PCAP.TRIG = CLOCKn.OUT`, Falling: one row per period, averaged over its high
 *   time, and one camera frame per row.
 * - `PCAP.ENABLE = PCOMPn.OUT`: rows cover exactly the window, and the capture ends with `Ok` when it closes.
 *   (TST's saved layout has `PCOMP1.ACTIVE` with `PULSES=0`, which also captures the run-up and never ends by
 *   itself; docs/panda-device.md explains the change.)
 * - Captured: CALCn.OUT, FMC_IN.VALk (Mean), PCAP.BITS1, PCAP.TS_TRIG (Value).
 */
export function xasTrigger (p: XasParams, ctx: TriggerContext = defaultTriggerContext()): PandaTriggerSetup {
  const P = `PCOMP${p.pcomp ?? 1}`
  const E = `INENC${p.encoder ?? 1}`
  const T = `TTLOUT${p.ttlout ?? 1}`
  const C = `CALC${p.calc ?? 1}`
  const K = `CLOCK${p.clock ?? 1}`
  const adc = p.adcChannels ?? [1, 2]
  const capture: CaptureField[] = [
    { field: `${C}.OUT`, capture: 'Mean' },
    ...adc.map((k): CaptureField => ({ field: `FMC_IN.VAL${k}`, capture: 'Mean' })),
    { field: 'PCAP.BITS1', capture: 'Value' },
    { field: 'PCAP.TS_TRIG', capture: 'Value' }
  ]
  const datasets = capturedDatasets(capture)
  const rowBytes = rowBytesOf(datasets)
  const { problems, numbers: n } = validateXas(p, ctx, rowBytes)
  problems.push(...instanceProblems('XAS', [
    ['pcomp', 'PCOMP', p.pcomp], ['encoder', 'INENC', p.encoder], ['ttlout', 'TTLOUT', p.ttlout], ['calc', 'CALC', p.calc], ['clock', 'CLOCK', p.clock]
  ]))
  if (!Array.isArray(adc) || adc.some((k) => !Number.isInteger(k) || k < 1 || k > 8)) {
    problems.push({ code: 'BAD_PARAMETER', message: `XAS: adcChannels ${JSON.stringify(adc)} must list FMC_IN channels 1..8` })
  }
  rejectIfInvalid('XAS', problems)
  if (n === undefined) throw new Error('unreachable: validation passed without numbers')
  const flip = ctx.encoderPolarity * n.direction < 0
  return finish({
    logic: 'xas',
    writes: [
      put(`${P}.ENABLE`, 'ZERO'),
      put('*CAPTURE', ''),
      put(`${C}.INPA`, `${E}.VAL`),
      put(`${C}.INPB`, 'ZERO'),
      put(`${C}.INPC`, 'ZERO'),
      put(`${C}.INPD`, 'ZERO'),
      put(`${C}.TYPEA`, flip ? '-Value' : 'Value'),
      put(`${C}.SHIFT`, 0),
      put(`${P}.INP`, `${C}.OUT`),
      put(`${P}.RELATIVE`, 'Relative'),
      put(`${P}.DIR`, 'Positive'),
      put(`${P}.PRE_START`, 0),
      put(`${P}.START`, n.startCounts),
      put(`${P}.WIDTH`, n.widthCounts),
      // One pulse: STEP is never used, but a pulse train needs STEP > WIDTH.
      put(`${P}.STEP`, n.widthCounts + 1),
      put(`${P}.PULSES`, 1),
      put(`${K}.ENABLE`, `${P}.OUT`),
      // Units before values: a value is read in the units set when it arrives.
      put(`${K}.PERIOD.UNITS`, 'ms'),
      put(`${K}.PERIOD`, timeValue(n.periodTicks, 'ms')),
      put(`${K}.WIDTH.UNITS`, 'ms'),
      put(`${K}.WIDTH`, timeValue(n.widthTicks, 'ms')),
      put('PCAP.ENABLE', `${P}.OUT`),
      put('PCAP.GATE', `${K}.OUT`),
      put('PCAP.TRIG', `${K}.OUT`),
      put('PCAP.TRIG_EDGE', 'Falling'),
      put(`${T}.VAL`, `${K}.OUT`),
      ...captureWrites(capture)
    ],
    kickoffWrites: [put(`${P}.ENABLE`, 'ONE')],
    stopWrites: [put(`${P}.ENABLE`, 'ZERO')],
    capture,
    datasets,
    rowBytes,
    expectedRows: p.npoints,
    rowTolerance: 1,
    captureTimeS: p.totalTime,
    motion: { startDeg: p.startDeg, endDeg: p.endDeg, velocityDegPerS: n.velocityDegPerS, runUpDeg: n.runUpDeg },
    numbers: { ...n }
  })
}

const SEQ_INPUTS: readonly SeqInput[] = ['BITA', 'BITB', 'BITC', 'POSA', 'POSB', 'POSC']

/**
 * A SEQ table (ophyd-async's StaticSeqTableTriggerLogic): `SEQn.PRESCALE` in µs, `REPEATS`, the table, the trigger
 * inputs; `PCAP.ENABLE = SEQn.ACTIVE`, `PCAP.GATE = PCAP.TRIG = SEQn.OUTA` (Falling: one row per OUTA pulse,
 * averaged over it), `TTLOUTn.VAL = SEQn.OUTA`. `SEQn.ENABLE` goes ONE at kickoff; the capture ends with `Ok` when
 * the table has run `repeats` times.
 */
export function seqTableTrigger (p: SeqTableParams, ctx: TriggerContext = defaultTriggerContext()): PandaTriggerSetup {
  const S = `SEQ${p.seq ?? 1}`
  const T = `TTLOUT${p.ttlout ?? 1}`
  const extra = p.capture ?? [{ field: 'INENC1.VAL', capture: 'Mean' }]
  const capture: CaptureField[] = [...extra.filter((c) => c.field !== 'PCAP.TS_TRIG'), { field: 'PCAP.TS_TRIG', capture: 'Value' }]
  const datasets = capturedDatasets(capture)
  const rowBytes = rowBytesOf(datasets)
  const { problems, numbers: n } = validateSeqTable(p, ctx, rowBytes)
  problems.push(...instanceProblems('SEQ table', [['seq', 'SEQ', p.seq], ['ttlout', 'TTLOUT', p.ttlout]]))
  problems.push(...captureProblems('SEQ table', extra))
  const inputs = SEQ_INPUTS.flatMap((k) => {
    const v = p.inputs?.[k]
    return v === undefined ? [] : [put(`${S}.${k}`, v)]
  })
  for (const w of inputs) {
    try {
      checked([w])
    } catch (err) {
      problems.push({ code: 'BAD_PARAMETER', message: `SEQ table: inputs: ${(err as Error).message}` })
    }
  }
  rejectIfInvalid('SEQ table', problems)
  if (n === undefined) throw new Error('unreachable: validation passed without numbers')
  return finish({
    logic: 'seq-table',
    writes: [
      put(`${S}.ENABLE`, 'ZERO'),
      put('*CAPTURE', ''),
      put(`${S}.PRESCALE.UNITS`, 'us'),
      put(`${S}.PRESCALE`, p.prescaleUs),
      put(`${S}.REPEATS`, p.repeats),
      ...inputs,
      { kind: 'table', target: `${S}.TABLE`, words: encodeSeqTable(p.table) },
      put('PCAP.ENABLE', `${S}.ACTIVE`),
      put('PCAP.GATE', `${S}.OUTA`),
      put('PCAP.TRIG', `${S}.OUTA`),
      put('PCAP.TRIG_EDGE', 'Falling'),
      put(`${T}.VAL`, `${S}.OUTA`),
      ...captureWrites(capture)
    ],
    kickoffWrites: [put(`${S}.ENABLE`, 'ONE')],
    stopWrites: [put(`${S}.ENABLE`, 'ZERO')],
    capture,
    datasets,
    rowBytes,
    expectedRows: n.expectedRows,
    rowTolerance: n.endsHigh ? 1 : 0,
    captureTimeS: n.durationS,
    motion: undefined,
    numbers: { ...n, endsHigh: n.endsHigh ? 1 : 0 }
  })
}

/** The setup for a prepare value, by its `logic`. */
export function triggerSetup (info: PandaFlyInfo, ctx: TriggerContext = defaultTriggerContext()): PandaTriggerSetup {
  switch (info.logic) {
    case 'tomography': return tomographyTrigger(info, ctx)
    case 'xas': return xasTrigger(info, ctx)
    case 'seq-table': return seqTableTrigger(info, ctx)
    default: {
      const logic: never = info
      rejectIfInvalid(String((logic as { logic?: unknown }).logic), [{
        code: 'BAD_PARAMETER', message: `logic ${JSON.stringify((logic as { logic?: unknown }).logic)} must be 'tomography', 'xas' or 'seq-table'`
      }])
      throw new Error('unreachable')
    }
  }
}

/** The bound on complete(): twice the expected capture time plus a margin (run-up, plan overhead). */
export function completeTimeoutMs (setup: PandaTriggerSetup, marginMs: number): number {
  return Math.ceil(setup.captureTimeS * 2000) + marginMs
}
