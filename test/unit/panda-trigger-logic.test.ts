/**
 * The trigger logic of TST's two fly scans and of SEQ tables, as the exact field writes (in order) each produces,
 * the numbers they derive, and the block table that checks every write before it is sent.
 */
import t, { type Test } from 'tap'
import { ErrorCode, isFlyScanError } from '../../src/errors.js'
import {
  blockInstance, checkWrite, completeTimeoutMs, outputsOfKind, seqRow, seqTableNumbers, seqTableTrigger, timeValue,
  tomographyTrigger, triggerSetup, writeLine, xasTrigger, type PandaTriggerSetup
} from '../../src/panda/index.js'
import { TST_XAS_PREPARE_LINES } from '../fixtures/panda-trigger/tst-xas.js'

const TST = { countsPerRev: 8000, encoderPolarity: -1, maxDataRateBytesPerS: 50e6 } as const
const PLUS = { ...TST, encoderPolarity: 1 } as const

const lines = (s: PandaTriggerSetup): string[] => s.writes.map(writeLine)

function refused (t: Test, fn: () => unknown, re: RegExp): void {
  try {
    fn()
    t.fail(`expected a refusal matching ${re.source}`)
  } catch (err) {
    t.ok(isFlyScanError(err, ErrorCode.BAD_INPUT), 'FLY_ERR_BAD_INPUT')
    t.match((err as Error).message, re)
  }
}

t.test('tomography, TST defaults (21 images, 9 s, from 0°): PCOMP steps 200 counts, 21 pulses', async t => {
  const s = tomographyTrigger({ numImages: 21, scanTime: 9, startDeg: 0 }, PLUS)
  t.same(lines(s), [
    'PCOMP1.ENABLE=ZERO',
    '*CAPTURE=',
    'PCOMP1.INP=INENC1.VAL',
    'PCOMP1.RELATIVE=Absolute',
    'PCOMP1.DIR=Positive',
    'PCOMP1.PRE_START=0',
    'PCOMP1.START=0',
    'PCOMP1.WIDTH=100',
    'PCOMP1.STEP=200',
    'PCOMP1.PULSES=21',
    'PCAP.ENABLE=PCOMP1.ACTIVE',
    'PCAP.GATE=ONE',
    'PCAP.TRIG=PCOMP1.OUT',
    'PCAP.TRIG_EDGE=Rising',
    'TTLOUT1.VAL=PCOMP1.OUT',
    'INENC1.VAL.CAPTURE=Value',
    'PCAP.TS_TRIG.CAPTURE=Value'
  ])
  t.same(s.kickoffWrites.map(writeLine), ['PCOMP1.ENABLE=ONE'])
  t.same(s.stopWrites.map(writeLine), ['PCOMP1.ENABLE=ZERO'])
  t.same(s.datasets.map((d) => [d.name, d.dtype]), [['INENC1.VAL.Value', 'float64'], ['PCAP.TS_TRIG.Value', 'float64']])
  t.equal(s.rowBytes, 16)
  t.equal(s.expectedRows, 21)
  t.equal(s.rowTolerance, 0)
  t.equal(s.captureTimeS, 9)
  t.same(s.motion, { startDeg: 0, endDeg: 180, velocityDegPerS: 20 })
  t.equal(s.numbers.stepCounts, 200)
  t.equal(s.numbers.triggerPeriodS, 0.45)
  t.equal(s.numbers.stepTimeS, 9 / 21, "TST's step time: scanTime / numImages")
  t.equal(s.numbers.exposureTimeS, 9 / 21 / 3, "TST's default exposure: a third of the step time")
})

t.test('tomography follows the encoder: START in counts, Negative when INENC counts down', async t => {
  const up = tomographyTrigger({ numImages: 401, scanTime: 40, startDeg: 10 }, PLUS)
  t.match(lines(up), ['PCOMP1.ENABLE=ZERO', '*CAPTURE=', 'PCOMP1.INP=INENC1.VAL', 'PCOMP1.RELATIVE=Absolute', 'PCOMP1.DIR=Positive',
    'PCOMP1.PRE_START=0', 'PCOMP1.START=222', 'PCOMP1.WIDTH=5', 'PCOMP1.STEP=10', 'PCOMP1.PULSES=401'])
  const down = tomographyTrigger({ numImages: 401, scanTime: 40, startDeg: 10 }, TST)
  t.match(lines(down), ['PCOMP1.ENABLE=ZERO', '*CAPTURE=', 'PCOMP1.INP=INENC1.VAL', 'PCOMP1.RELATIVE=Absolute', 'PCOMP1.DIR=Negative',
    'PCOMP1.PRE_START=0', 'PCOMP1.START=-222', 'PCOMP1.WIDTH=5', 'PCOMP1.STEP=10', 'PCOMP1.PULSES=401'])
  const other = tomographyTrigger({ numImages: 3, scanTime: 2, startDeg: 0, pcomp: 2, encoder: 3, ttlout: 5 }, PLUS)
  t.ok(lines(other).includes('TTLOUT5.VAL=PCOMP2.OUT'))
  t.ok(lines(other).includes('PCOMP2.INP=INENC3.VAL'))
  t.ok(lines(other).includes('INENC3.VAL.CAPTURE=Value'))
  t.ok(lines(other).includes('PCOMP2.STEP=2000'))
})

t.test("XAS as TST's saved layout: CALC1 flips the sign, START=22, WIDTH=4000, clock 10 ms / 9.999 ms", async t => {
  const s = xasTrigger({ npoints: 1000, totalTime: 10, startDeg: 0, endDeg: 180, runUpDeg: 1 }, TST)
  t.same(lines(s), TST_XAS_PREPARE_LINES)
  t.same(s.kickoffWrites.map(writeLine), ['PCOMP1.ENABLE=ONE'])
  t.same(s.stopWrites.map(writeLine), ['PCOMP1.ENABLE=ZERO'])
  t.equal(s.rowBytes, 36, 'the 36-byte XAS row: 4 doubles and one uint32')
  t.same(s.datasets.filter((d) => d.dtype === 'uint32').map((d) => d.name), ['PCAP.BITS1.Value'])
  t.equal(s.expectedRows, 1000)
  t.equal(s.rowTolerance, 1)
  t.same(s.motion, { startDeg: 0, endDeg: 180, velocityDegPerS: 18, runUpDeg: 1 })
  t.equal(s.numbers.periodTicks, 1_250_000)
  t.equal(s.numbers.widthTicks, 1_249_875)
})

t.test('XAS: CALC1 makes CALC1.OUT count up along the scan, whatever the encoder and the direction', async t => {
  const typeA = (ctx: typeof TST | typeof PLUS, startDeg: number, endDeg: number): string | undefined =>
    lines(xasTrigger({ npoints: 10, totalTime: 1, startDeg, endDeg }, ctx)).find((l) => l.startsWith('CALC1.TYPEA='))
  t.equal(typeA(PLUS, 0, 10), 'CALC1.TYPEA=Value')
  t.equal(typeA(PLUS, 10, 0), 'CALC1.TYPEA=-Value')
  t.equal(typeA(TST, 0, 10), 'CALC1.TYPEA=-Value')
  t.equal(typeA(TST, 10, 0), 'CALC1.TYPEA=Value')
  const s = xasTrigger({ npoints: 10, totalTime: 1, startDeg: 30, endDeg: 20 }, PLUS)
  t.ok(lines(s).includes('PCOMP1.START=111'), "the default run-up is TST's 5° (111 counts)")
  t.ok(lines(s).includes('PCOMP1.WIDTH=222'))
  t.ok(lines(s).includes('CLOCK1.PERIOD=100'))
  t.ok(lines(s).includes('CLOCK1.WIDTH=99.999'))
  const adc = xasTrigger({ npoints: 10, totalTime: 1, startDeg: 0, endDeg: 1, adcChannels: [3], clock: 2, calc: 2 }, PLUS)
  t.ok(lines(adc).includes('FMC_IN.VAL3.CAPTURE=Mean'))
  t.notOk(lines(adc).some((l) => l.startsWith('FMC_IN.VAL1')))
  t.ok(lines(adc).includes('PCAP.GATE=CLOCK2.OUT'))
  t.ok(lines(adc).includes('PCOMP1.INP=CALC2.OUT'))
})

t.test('times go out in whole 8 ns ticks without floating-point noise', async t => {
  t.equal(timeValue(1_250_000, 'ms'), 10)
  t.equal(timeValue(1_249_875, 'ms'), 9.999)
  t.equal(timeValue(125, 'us'), 1)
  t.equal(timeValue(1, 'us'), 0.008)
  t.equal(timeValue(125_000_000, 's'), 1)
  t.equal(timeValue(41_666_667, 'ms'), 333.333336)
  const s = xasTrigger({ npoints: 3, totalTime: 1, startDeg: 0, endDeg: 1 }, PLUS)
  t.ok(lines(s).includes('CLOCK1.PERIOD=333.333336'))
  t.ok(lines(s).includes('CLOCK1.WIDTH=333.332336'))
})

t.test('SEQ table: prescale units before the value, the packed table, PCAP on OUTA falling', async t => {
  const s = seqTableTrigger({
    table: [seqRow({ repeats: 10, time1: 50, outa1: true, time2: 50 })],
    repeats: 1,
    prescaleUs: 1,
    inputs: { POSA: 'INENC1.VAL' }
  }, PLUS)
  t.same(lines(s), [
    'SEQ1.ENABLE=ZERO',
    '*CAPTURE=',
    'SEQ1.PRESCALE.UNITS=us',
    'SEQ1.PRESCALE=1',
    'SEQ1.REPEATS=1',
    'SEQ1.POSA=INENC1.VAL',
    'SEQ1.TABLE< (4 words)',
    'PCAP.ENABLE=SEQ1.ACTIVE',
    'PCAP.GATE=SEQ1.OUTA',
    'PCAP.TRIG=SEQ1.OUTA',
    'PCAP.TRIG_EDGE=Falling',
    'TTLOUT1.VAL=SEQ1.OUTA',
    'INENC1.VAL.CAPTURE=Mean',
    'PCAP.TS_TRIG.CAPTURE=Value'
  ])
  const table = s.writes.find((w) => w.kind === 'table')
  t.same(table?.kind === 'table' ? [...table.words] : [], [1048586, 0, 50, 50], '10 | OUTA1 (bit 20), position 0, 50, 50')
  t.same(s.kickoffWrites.map(writeLine), ['SEQ1.ENABLE=ONE'])
  t.equal(s.expectedRows, 10)
  t.equal(s.rowTolerance, 0)
  t.ok(Math.abs(s.captureTimeS - 1e-3) < 1e-15, '10 × (50 + 50) µs')
  t.equal(s.motion, undefined)
})

t.test('SEQ table rows: falling edges of OUTA across phases, repeats, rows and table repeats', async t => {
  const pulse = seqRow({ repeats: 3, time1: 5, outa1: true, time2: 5 })
  const once = seqTableNumbers({ table: [pulse], repeats: 1, prescaleUs: 1 })
  t.match(once, { expectedRows: 3, endsHigh: false })
  t.ok(Math.abs(once.durationS - 30e-6) < 1e-15, `3 × (5 + 5) µs (${once.durationS})`)
  t.equal(seqTableNumbers({ table: [pulse], repeats: 2, prescaleUs: 1 }).expectedRows, 6)
  // High for three runs of phase 2, then low: one edge.
  const high = seqRow({ repeats: 3, time2: 1, outa2: true })
  const low = seqRow({ repeats: 1, time2: 1 })
  t.equal(seqTableNumbers({ table: [high, low], repeats: 1, prescaleUs: 1 }).expectedRows, 1)
  // Low then high in each run: an edge between runs, none at the end of the table (ACTIVE falls with OUTA).
  const lowHigh = seqRow({ repeats: 2, time1: 1, time2: 1, outa2: true })
  t.match(seqTableNumbers({ table: [lowHigh], repeats: 1, prescaleUs: 1 }), { expectedRows: 1, endsHigh: true })
  // Repeating that table adds the edge from the end of one run to the start of the next.
  t.equal(seqTableNumbers({ table: [lowHigh], repeats: 3, prescaleUs: 1 }).expectedRows, 5)
  const s = seqTableTrigger({ table: [lowHigh], repeats: 1, prescaleUs: 1 }, PLUS)
  t.equal(s.rowTolerance, 1, 'a table that ends with OUTA high may or may not give its last row')
})

t.test('triggerSetup dispatches on logic; complete() is bounded by twice the scan plus the margin', async t => {
  const s = triggerSetup({ logic: 'tomography', numImages: 21, scanTime: 9, startDeg: 0 }, PLUS)
  t.equal(s.logic, 'tomography')
  t.equal(completeTimeoutMs(s, 60_000), 78_000)
  t.equal(triggerSetup({ logic: 'xas', npoints: 10, totalTime: 1, startDeg: 0, endDeg: 1 }, PLUS).logic, 'xas')
  t.equal(triggerSetup({ logic: 'seq-table', table: [seqRow({ time2: 1 })], repeats: 1, prescaleUs: 1 }, PLUS).logic, 'seq-table')
  refused(t, () => triggerSetup({ logic: 'raster' } as never, PLUS), /logic "raster" must be 'tomography', 'xas' or 'seq-table'/)
})

t.test('instances and captures a PandABox does not have are refused before any write exists', async t => {
  refused(t, () => tomographyTrigger({ numImages: 21, scanTime: 9, startDeg: 0, pcomp: 3 }, PLUS), /pcomp 3 must be an instance number from 1 to 2 \(PCOMP1\.\.PCOMP2\)/)
  refused(t, () => xasTrigger({ npoints: 10, totalTime: 1, startDeg: 0, endDeg: 1, adcChannels: [9] }, PLUS), /adcChannels \[9\] must list FMC_IN channels 1\.\.8/)
  refused(t, () => seqTableTrigger({ table: [seqRow()], repeats: 1, prescaleUs: 1, capture: [{ field: 'PCOMP1.OUT', capture: 'Mean' }] }, PLUS),
    /capture PCOMP1\.OUT Mean: .*tst-fly does not write the CAPTURE attribute of a bit_out field/)
  refused(t, () => seqTableTrigger({ table: [seqRow()], repeats: 1, prescaleUs: 1, inputs: { POSA: 'TTLIN1.VAL' } }, PLUS),
    /SEQ1\.POSA=TTLIN1\.VAL: a pos_mux takes ZERO or a pos_out/)
})

t.test('the block table refuses what the box would refuse', async t => {
  const ok: Array<[string, string]> = [
    ['PCOMP1.START', '-222'], ['PCOMP2.DIR', 'Either'], ['PCAP.TRIG', 'TTLIN1.VAL'], ['PCAP.ENABLE', 'ONE'], ['TTLOUT10.VAL', 'SEQ2.OUTF'],
    ['CALC1.INPA', 'FMC_IN.VAL8'], ['CLOCK1.PERIOD.UNITS', 'us'], ['CLOCK2.WIDTH', '0.5'], ['INENC4.VAL.CAPTURE', 'Min Max Mean'],
    ['PCAP.TS_TRIG.CAPTURE', 'Value'], ['PCAP.GATE.DELAY', '1'], ['*CAPTURE', ''], ['CALC2.SHIFT', '2'], ['BITS.A', '1']
  ]
  for (const [target, value] of ok) t.doesNotThrow(() => { checkWrite(target, value) }, `${target}=${value}`)
  const bad: Array<[string, string, RegExp]> = [
    ['PCOMP3.START', '0', /a PandABox has PCOMP1\.\.PCOMP2/],
    ['PCOMP.START', '0', /PCOMP has 2 instances, so it needs a number/],
    ['TTLOUT11.VAL', 'ONE', /TTLOUT1\.\.TTLOUT10/],
    ['LUT1.FUNC', '0', /tst-fly knows PCAP, PCOMP/],
    ['PCOMP1.ACTIVE', '1', /a bit_out field is read-only/],
    ['PCOMP1.SPEED', '1', /PCOMP has no field SPEED/],
    ['PCOMP1.DIR', 'Up', /expected one of "Positive", "Negative", "Either"/],
    ['PCAP.TRIG', 'INENC1.VAL', /a bit_mux takes ZERO, ONE or a bit_out/],
    ['PCOMP1.INP', 'PCOMP1.OUT', /a pos_mux takes ZERO or a pos_out/],
    ['PCOMP1.INP', 'ONE', /a pos_mux/],
    ['CALC1.SHIFT', '3', /expected an integer from 0 to 2/],
    ['PCOMP1.START', '1.5', /expected an integer from -2147483648 to 2147483647/],
    ['PCOMP1.PULSES', '-1', /expected an integer from 0 to 4294967295/],
    ['CLOCK1.PERIOD', '-1', /expected a finite number ≥ 0/],
    ['CLOCK1.PERIOD.UNITS', 'h', /expected one of "min", "s", "ms", "us"/],
    ['INENC1.VAL.CAPTURE', 'Average', /expected one of "No", "Value"/],
    ['PCAP.TS_TRIG.CAPTURE', 'Mean', /expected one of "No", "Value"$/],
    ['*CAPTURE', 'x', /takes no value/]
  ]
  for (const [target, value, re] of bad) refused(t, () => { checkWrite(target, value) }, re)
  t.same(blockInstance('PCAP').number, 1)
  t.same(blockInstance('TTLOUT10').number, 10)
  t.ok(outputsOfKind('pos_out').includes('FMC_IN.VAL2'))
  t.ok(outputsOfKind('bit_out').includes('PCOMP2.OUT'))
  t.notOk(outputsOfKind('bit_out').includes('PCOMP3.OUT'))
})
