/**
 * Validation before arming: every rule that makes a fly scan impossible, with the message and numbers a scientist
 * sees, and one error listing all problems at once.
 */
import t from 'tap'
import { defaults } from '../../config/index.js'
import { ErrorCode, isFlyScanError } from '../../src/errors.js'
import {
  defaultTriggerContext, rejectIfInvalid, seqRow, tomographyTrigger, validateSeqTable, validateTomography, validateXas,
  type ProblemCode, type ValidationProblem
} from '../../src/panda/index.js'

const CTX = { countsPerRev: 8000, encoderPolarity: 1, maxDataRateBytesPerS: 50e6 } as const
const XAS_ROW = 36

const codes = (ps: readonly ValidationProblem[]): ProblemCode[] => ps.map((p) => p.code)
const text = (ps: readonly ValidationProblem[]): string => ps.map((p) => p.message).join('\n')

t.test('the default context is TST: 8000 counts/rev, +1, the data-port limit from config', async t => {
  t.same(defaultTriggerContext(), { countsPerRev: 8000, encoderPolarity: 1, maxDataRateBytesPerS: defaults.panda.maxDataRateBytesPerS })
})

t.test('tomography: a well-formed request has no problems and its numbers', async t => {
  const { problems, numbers } = validateTomography({ numImages: 21, scanTime: 9, startDeg: 0, exposureTime: 0.1, deadtime: 63e-6, maxVelocity: 720 }, CTX)
  t.same(problems, [])
  t.match(numbers, { stepCounts: 200, widthCounts: 100, startCounts: 0, velocityDegPerS: 20, triggerPeriodS: 0.45, exposureTimeS: 0.1, endDeg: 180 })
})

t.test('tomography: a non-integer number of encoder counts per pulse, with the nearest numImages that work', async t => {
  const { problems } = validateTomography({ numImages: 721, scanTime: 30, startDeg: 0 }, CTX)
  t.same(codes(problems), ['STEP_NOT_INTEGER'])
  t.equal(text(problems), 'tomography: 8000 counts/rev over 180° for 721 images is 4000/720 = 5.55556 encoder counts per pulse, ' +
    'which is not an integer (PCOMP steps in whole counts); the nearest numImages that work are 501 and 801')
})

t.test('tomography: one count per pulse leaves no room for the pulse to fall', async t => {
  const { problems } = validateTomography({ numImages: 4001, scanTime: 400, startDeg: 0 }, CTX)
  t.same(codes(problems), ['STEP_TOO_SMALL'])
  t.match(text(problems), /4001 images over 180° is 1 count per pulse; a pulse needs at least 2 counts/)
})

t.test('tomography: an exposure longer than the step time (TST: scanTime / numImages)', async t => {
  const { problems } = validateTomography({ numImages: 21, scanTime: 9, startDeg: 0, exposureTime: 0.5 }, CTX)
  t.same(codes(problems), ['EXPOSURE_TOO_LONG'])
  t.equal(text(problems), 'tomography: exposure time 0.5 s is longer than the step time 0.428571 s (scan time 9 s / 21 images)')
})

t.test('tomography: exposure plus camera deadtime longer than the time between triggers', async t => {
  const { problems } = validateTomography({ numImages: 21, scanTime: 9, startDeg: 0, exposureTime: 0.42, deadtime: 0.04 }, CTX)
  t.same(codes(problems), ['EXPOSURE_AND_DEADTIME_TOO_LONG'])
  t.equal(text(problems), 'tomography: exposure 0.42 s + camera deadtime 0.04 s = 0.46 s does not fit in the 0.45 s between triggers')
})

t.test('tomography: a velocity above the motor VMAX, with the shortest scan time; VMAX 0 is no limit', async t => {
  const { problems } = validateTomography({ numImages: 21, scanTime: 1, startDeg: 0, maxVelocity: 90 }, CTX)
  t.same(codes(problems), ['VELOCITY_ABOVE_VMAX'])
  t.equal(text(problems), 'tomography: 180° in 1 s needs the stage at 180 deg/s, above its VMAX of 90 deg/s; the shortest scanTime is 2 s')
  t.same(validateTomography({ numImages: 21, scanTime: 1, startDeg: 0, maxVelocity: 0 }, CTX).problems, [])
})

t.test('tomography: malformed parameters are named, and numbers are not derived from them', async t => {
  const r = validateTomography({ numImages: 1.5, scanTime: -1, startDeg: Number.NaN }, CTX)
  t.same(codes(r.problems), ['BAD_PARAMETER', 'BAD_PARAMETER', 'BAD_PARAMETER'])
  t.match(text(r.problems), /numImages 1\.5 must be an integer from 2 up/)
  t.match(text(r.problems), /scanTime -1 must be a number > 0 s/)
  t.match(text(r.problems), /startDeg NaN must be a finite number of degrees/)
  t.equal(r.numbers, undefined)
  t.match(text(validateTomography({ numImages: 21, scanTime: 9, startDeg: 0 }, { ...CTX, encoderPolarity: 2 as never }).problems),
    /encoderPolarity 2 must be 1 or -1/)
})

t.test('tomography: a start beyond int32 counts', async t => {
  const { problems } = validateTomography({ numImages: 21, scanTime: 9, startDeg: 1e8 }, CTX)
  t.same(codes(problems), ['POSITION_OUT_OF_RANGE', 'POSITION_OUT_OF_RANGE'])
  t.match(text(problems), /the start position 2222222222 counts is outside PCOMP's int32 range/)
})

t.test('every problem in one FLY_ERR_BAD_INPUT, numbered, with codes in details', async t => {
  try {
    tomographyTrigger({ numImages: 721, scanTime: 1, startDeg: 0, exposureTime: 0.5, maxVelocity: 90 }, CTX)
    t.fail('should have been refused')
  } catch (err) {
    t.ok(isFlyScanError(err, ErrorCode.BAD_INPUT))
    const e = err as Error & { details: Record<string, unknown> }
    t.match(e.message, /^PandA: tomography scan rejected before arming: 3 problems: \(1\) tomography: 8000 counts\/rev .*; \(2\) tomography: exposure time 0\.5 s is longer than the step time 0\.00138696 s .*; \(3\) tomography: 180° in 1 s needs the stage at 180 deg\/s/)
    t.same(e.details, { logic: 'tomography', problems: 3, codes: 'STEP_NOT_INTEGER,EXPOSURE_TOO_LONG,VELOCITY_ABOVE_VMAX' })
  }
  t.doesNotThrow(() => { rejectIfInvalid('tomography', []) })
  t.throws(() => { rejectIfInvalid('XAS', [{ code: 'EMPTY_WINDOW', message: 'XAS: x' }], 'panda1') }, { message: 'panda1: XAS scan rejected before arming: XAS: x' })
})

t.test('XAS: a well-formed request and its numbers', async t => {
  const { problems, numbers } = validateXas({ npoints: 1000, totalTime: 10, startDeg: 0, endDeg: 180, maxVelocity: 90 }, CTX, XAS_ROW)
  t.same(problems, [])
  t.match(numbers, { direction: 1, startCounts: 111, widthCounts: 4000, velocityDegPerS: 18, periodS: 0.01, periodTicks: 1_250_000, widthTicks: 1_249_875, resetTicks: 125 })
})

t.test('XAS: a clock period with no high time left after the reset', async t => {
  const { problems } = validateXas({ npoints: 1000, totalTime: 0.001, startDeg: 0, endDeg: 1 }, CTX, XAS_ROW)
  t.same(codes(problems), ['PERIOD_TOO_SHORT'])
  t.equal(text(problems), 'XAS: 0.001 s / 1000 points is a clock period of 0.000001 s (125 ticks of 8 ns), which leaves no high time after the 125-tick reset')
})

t.test('XAS: more rows per second than the data port carries', async t => {
  const { problems } = validateXas({ npoints: 2_000_000, totalTime: 1, startDeg: 0, endDeg: 90, clockResetTime: 8e-9 }, CTX, XAS_ROW)
  t.same(codes(problems), ['DATA_RATE_TOO_HIGH'])
  t.equal(text(problems), 'XAS: 2000000 rows/s of 36 bytes is 72 MB/s, more than the 50 MB/s the PandA data port carries before Data overrun')
})

t.test('XAS: an empty window, a run-up under one count, an exposure longer than a period, VMAX', async t => {
  t.same(codes(validateXas({ npoints: 10, totalTime: 1, startDeg: 5, endDeg: 5 }, CTX, XAS_ROW).problems), ['EMPTY_WINDOW'])
  const runUp = validateXas({ npoints: 10, totalTime: 1, startDeg: 0, endDeg: 5, runUpDeg: 0.01 }, CTX, XAS_ROW).problems
  t.same(codes(runUp), ['RUN_UP_TOO_SHORT'])
  t.match(text(runUp), /a run-up of 0\.01° is 0\.222222 counts; PCOMP needs START ≥ 1 count/)
  const exposure = validateXas({ npoints: 100, totalTime: 1, startDeg: 0, endDeg: 5, exposureTime: 0.01, deadtime: 0.001 }, CTX, XAS_ROW).problems
  t.same(codes(exposure), ['EXPOSURE_TOO_LONG'])
  t.equal(text(exposure), 'XAS: exposure 0.01 s + camera deadtime 0.001 s does not fit in the clock period 0.01 s (1 s / 100 points)')
  const fast = validateXas({ npoints: 100, totalTime: 1, startDeg: 0, endDeg: 180, maxVelocity: 90 }, CTX, XAS_ROW).problems
  t.same(codes(fast), ['VELOCITY_ABOVE_VMAX'])
  t.match(text(fast), /180° in 1 s needs the stage at 180 deg\/s, above its VMAX of 90 deg\/s; the shortest totalTime is 2 s/)
  t.match(text(validateXas({ npoints: 0, totalTime: 1, startDeg: 0, endDeg: 1 }, CTX, XAS_ROW).problems), /npoints 0 must be an integer from 1 up/)
})

t.test('SEQ tables: more than 4096 rows, a table that runs forever, an empty table, too fast for the data port', async t => {
  const rows = Array.from({ length: 4097 }, () => seqRow({ time2: 1 }))
  const many = validateSeqTable({ table: rows, repeats: 1, prescaleUs: 1 }, CTX, 16).problems
  t.same(codes(many), ['TOO_MANY_ROWS'])
  t.equal(text(many), 'SEQ table: 4097 rows, but the SEQ block holds at most 4096')
  const forever = validateSeqTable({ table: [seqRow(), seqRow({ repeats: 0 })], repeats: 0, prescaleUs: 1 }, CTX, 16).problems
  t.same(codes(forever), ['TABLE_RUNS_FOREVER', 'TABLE_RUNS_FOREVER'])
  t.match(text(forever), /repeats 0 runs the table forever/)
  t.match(text(forever), /rows\[1\] have repeats 0, which runs forever/)
  t.same(codes(validateSeqTable({ table: [], repeats: 1, prescaleUs: 1 }, CTX, 16).problems), ['EMPTY_TABLE'])
  const fast = validateSeqTable({ table: [seqRow({ repeats: 1000, time1: 1, outa1: true, time2: 1 })], repeats: 1, prescaleUs: 0 }, CTX, 16)
  t.same(codes(fast.problems), ['DATA_RATE_TOO_HIGH'])
  t.match(text(fast.problems), /62500000 rows\/s of 16 bytes is 1000 MB\/s/)
  t.same(validateSeqTable({ table: [seqRow({ repeats: 1000, time1: 1, outa1: true, time2: 1 })], repeats: 1, prescaleUs: 1 }, CTX, 16).problems, [])
})
