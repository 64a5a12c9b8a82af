import t from 'tap'
import { DbeMask, DbrBase, epicsTimeFromMs, type DbrValue } from '../../src/parsers/index.js'
import { ErrorCode } from '../../src/errors.js'
import {
  AlarmStatus, ManualClock, Severity, SimIoc, SimRecord, charsFromString, stringFromChars,
  type PvState, type RecordOptions, type ServedPv
} from '../../src/sim/ioc/index.js'

/** Every event a PV posts, with its mask. */
function watch (pv: ServedPv): Array<{ state: PvState, mask: number }> {
  const events: Array<{ state: PvState, mask: number }> = []
  pv.subscribe((state, mask) => events.push({ state, mask }))
  return events
}

function record (options: RecordOptions, clock = new ManualClock()): SimRecord {
  return new SimRecord(options, clock)
}

const field = (r: SimRecord, f: string): ServedPv => {
  const pv = r.field(f)
  if (pv === undefined) throw new Error(`${r.name} has no field ${f}`)
  return pv
}

const num = (v: DbrValue): number => v[0] as number

t.test('ai: native types, metadata, and HIHI/HIGH/LOW/LOLO alarms with their severities', async t => {
  const r = record({ name: 'S:Temp', type: 'ai', value: 22.5, egu: 'C', prec: 2, hopr: 50, lopr: 0, high: 30, hihi: 40, low: 15, lolo: 10 })
  t.equal(r.pv.base, DbrBase.DOUBLE)
  t.equal(r.pv.writable, true, 'a put to an input record works, as on a real IOC')
  t.same(Array.from(r.pv.get().value as Float64Array), [22.5])
  t.equal(field(r, 'EGU').base, DbrBase.STRING)
  t.equal(field(r, 'PREC').base, DbrBase.SHORT)
  t.equal(field(r, 'HIHI').base, DbrBase.DOUBLE)
  t.equal(field(r, 'HHSV').base, DbrBase.ENUM)
  t.notOk(r.field('DRVH'), 'ai has no drive limits')
  t.match(r.pv.metadata(), { units: 'C', precision: 2, upperDispLimit: 50, lowerDispLimit: 0, upperCtrlLimit: 50, lowerCtrlLimit: 0 })
  t.match(r.pv.metadata(), { upperAlarmLimit: 40, upperWarningLimit: 30, lowerWarningLimit: 15, lowerAlarmLimit: 10 })

  const events = watch(r.pv)
  const sevr = watch(field(r, 'SEVR'))
  const cases: Array<[number, number, number]> = [
    [35, AlarmStatus.HIGH, Severity.MINOR],
    [45, AlarmStatus.HIHI, Severity.MAJOR],
    [40, AlarmStatus.HIHI, Severity.MAJOR],
    [12, AlarmStatus.LOW, Severity.MINOR],
    [5, AlarmStatus.LOLO, Severity.MAJOR],
    [20, AlarmStatus.NO_ALARM, Severity.NO_ALARM]
  ]
  for (const [value, status, severity] of cases) {
    await r.pv.put(Float64Array.of(value))
    t.equal(r.pv.get().status, status, `${value}: status`)
    t.equal(r.pv.get().severity, severity, `${value}: severity`)
  }
  t.same(events.map((e) => e.mask), [
    DbeMask.VALUE | DbeMask.LOG | DbeMask.ALARM,
    DbeMask.VALUE | DbeMask.LOG | DbeMask.ALARM,
    DbeMask.VALUE | DbeMask.LOG,
    DbeMask.VALUE | DbeMask.LOG | DbeMask.ALARM,
    DbeMask.VALUE | DbeMask.LOG | DbeMask.ALARM,
    DbeMask.VALUE | DbeMask.LOG | DbeMask.ALARM
  ], 'VALUE|LOG on every change, ALARM only when the alarm changes')
  t.same(sevr.map((e) => num(e.state.value)), [1, 2, 1, 2, 0], '.SEVR follows')
  t.equal(num(field(r, 'STAT').get().value), AlarmStatus.NO_ALARM)

  await r.pv.put(Float64Array.of(20))
  t.equal(events.length, cases.length, 'writing the same value posts nothing')
})

t.test('an alarm limit without a severity raises nothing and reads NaN in the metadata', async t => {
  const r = record({ name: 'S:Plain', type: 'ai', value: 1000, hihi: 10, hhsv: 'NO_ALARM' })
  t.equal(r.pv.get().severity, Severity.NO_ALARM)
  t.ok(Number.isNaN(r.pv.metadata().upperAlarmLimit), 'NaN as EPICS 7 reports a disabled limit')
  t.ok(Number.isNaN(r.pv.metadata().lowerAlarmLimit))
  // Giving the limit a severity processes the record again: the alarm appears at once.
  const events = watch(r.pv)
  await field(r, 'HHSV').put(Uint16Array.of(Severity.MINOR))
  t.equal(r.pv.get().status, AlarmStatus.HIHI)
  t.equal(r.pv.get().severity, Severity.MINOR)
  t.same(events.map((e) => e.mask), [DbeMask.ALARM, DbeMask.PROPERTY])
  t.equal(r.pv.metadata().upperAlarmLimit, 10)
})

t.test('a metadata change posts PROPERTY on the value; the field posts VALUE|LOG', async t => {
  const r = record({ name: 'S:V', type: 'ao', value: 1, egu: 'V', prec: 3 })
  const valueEvents = watch(r.pv)
  const eguEvents = watch(field(r, 'EGU'))
  await field(r, 'EGU').put(['mV'])
  t.same(valueEvents.map((e) => e.mask), [DbeMask.PROPERTY])
  t.same(eguEvents.map((e) => [e.state.value, e.mask]), [[['mV'], DbeMask.VALUE | DbeMask.LOG]])
  t.equal(r.pv.metadata().units, 'mV')
  await field(r, 'PREC').put(Int16Array.of(5))
  t.equal(r.pv.metadata().precision, 5)
  t.equal(valueEvents.length, 2)
  await field(r, 'DESC').put(['not a property'])
  t.equal(valueEvents.length, 2, 'DESC is not a property of the value')
})

t.test('timestamps come from the clock on every change', async t => {
  const clock = new ManualClock({ startMs: Date.UTC(2026, 4, 1, 12) })
  const r = record({ name: 'S:T', type: 'longout', value: 1 }, clock)
  t.same(r.pv.get().stamp, epicsTimeFromMs(clock.nowMs()))
  clock.advance(1234.5)
  await r.pv.put(Int32Array.of(2))
  t.same(r.pv.get().stamp, epicsTimeFromMs(Date.UTC(2026, 4, 1, 12) + 1234.5))
  clock.advance(10)
  r.set(3, { stampMs: 42_000 })
  t.same(r.pv.get().stamp, epicsTimeFromMs(42_000), 'an owner may give the time of the change')
})

t.test('ao and longout clamp a put to DRVH/DRVL and report them as control limits', async t => {
  const ao = record({ name: 'S:ao', type: 'ao', hopr: 100, lopr: -100, drvh: 10, drvl: -5 })
  await ao.pv.put(Float64Array.of(25))
  t.equal(ao.number, 10)
  await ao.pv.put(Float64Array.of(-25))
  t.equal(ao.number, -5)
  t.match(ao.pv.metadata(), { upperCtrlLimit: 10, lowerCtrlLimit: -5, upperDispLimit: 100 })
  const lo = record({ name: 'S:lo', type: 'longout', drvh: 1000, drvl: 0, hihi: 900 })
  t.equal(lo.pv.base, DbrBase.LONG)
  t.equal(field(lo, 'DRVH').base, DbrBase.LONG)
  t.notOk(lo.field('PREC'), 'longout has no PREC')
  await lo.pv.put(Int32Array.of(5000))
  t.equal(lo.number, 1000)
  t.equal(lo.pv.get().status, AlarmStatus.HIHI)
  t.equal(lo.pv.get().severity, Severity.MAJOR)
  const li = record({ name: 'S:li', type: 'longin', value: -3, lolo: -2 })
  t.equal(li.pv.get().status, AlarmStatus.LOLO, 'an initial value outside a limit is in alarm from the start')
})

t.test('bi/bo: ZNAM/ONAM are the enum strings, ZSV/OSV the state severities, other states refused', async t => {
  const bi = record({ name: 'S:bi', type: 'bi', znam: 'Closed', onam: 'Open', zsv: 'MINOR', value: 'Open' })
  t.equal(bi.pv.base, DbrBase.ENUM)
  t.same(bi.pv.metadata(), { enumStrings: ['Closed', 'Open'] })
  t.equal(bi.number, 1)
  t.equal(bi.text, 'Open')
  t.equal(bi.pv.get().severity, Severity.NO_ALARM)
  await bi.pv.put(Uint16Array.of(0))
  t.equal(bi.pv.get().status, AlarmStatus.STATE)
  t.equal(bi.pv.get().severity, Severity.MINOR)
  await t.rejects(bi.pv.put(Uint16Array.of(2)), { code: ErrorCode.BAD_INPUT, message: /S:bi: state 2 is out of range 0\.\.1/ })
  const events = watch(bi.pv)
  await field(bi, 'ONAM').put(['Opened'])
  t.same(events.map((e) => e.mask), [DbeMask.PROPERTY])
  t.same(bi.pv.metadata().enumStrings, ['Closed', 'Opened'])
})

t.test('mbbi/mbbo: ZRST..FFST give up to 16 enum strings, to the last one defined', async t => {
  const mbbo = record({ name: 'S:mbbo', type: 'mbbo', states: ['Out', 'Al', '', 'Cu'], value: 'Cu' })
  t.same(mbbo.pv.metadata().enumStrings, ['Out', 'Al', '', 'Cu'])
  t.equal(mbbo.number, 3)
  t.equal(field(mbbo, 'FFST').base, DbrBase.STRING)
  await t.rejects(mbbo.pv.put(Uint16Array.of(4)), { message: /state 4 is out of range 0\.\.3/ })
  await field(mbbo, 'FRST').put(['Pb'])
  t.same(mbbo.pv.metadata().enumStrings, ['Out', 'Al', '', 'Cu', 'Pb'])
  await mbbo.pv.put(Uint16Array.of(4))
  t.equal(mbbo.text, 'Pb')

  const sixteen = Array.from({ length: 16 }, (_, i) => `S${i}`)
  const full = record({ name: 'S:full', type: 'mbbi', states: sixteen, stateSeverities: ['NO_ALARM', 'INVALID'] })
  t.equal(full.pv.metadata().enumStrings?.length, 16)
  full.set('S1')
  t.equal(full.pv.get().status, AlarmStatus.STATE)
  t.equal(full.pv.get().severity, Severity.INVALID)
  const none = record({ name: 'S:none', type: 'mbbo' })
  await none.pv.put(Uint16Array.of(15))
  t.equal(none.number, 15, 'with no strings, any of the 16 states is taken')
})

t.test('stringin/stringout hold 39 bytes at most', async t => {
  const r = record({ name: 'S:str', type: 'stringout', value: 'Ready' })
  t.equal(r.pv.base, DbrBase.STRING)
  t.same(r.pv.metadata(), {})
  await r.pv.put(['x'.repeat(50)])
  t.equal(r.text, 'x'.repeat(39))
  t.notOk(r.field('EGU'))
})

t.test('waveform: FTVL sets the type, a put sets NORD, NELM bounds it, every write posts', async t => {
  const w = record({ name: 'S:wf', type: 'waveform', ftvl: 'SHORT', nelm: 10, egu: 'cts', value: [1, 2, 3] })
  t.equal(w.pv.base, DbrBase.SHORT)
  t.equal(w.pv.maxCount, 10)
  t.equal(num(field(w, 'NELM').get().value), 10)
  t.equal(num(field(w, 'NORD').get().value), 3)
  t.equal(field(w, 'FTVL').metadata().enumStrings?.[num(field(w, 'FTVL').get().value)], 'SHORT')
  t.equal(field(w, 'NORD').writable, false)
  await t.rejects(field(w, 'NORD').put(Int32Array.of(1)), { message: /S:wf\.NORD is read-only/ })

  const events = watch(w.pv)
  const nord = watch(field(w, 'NORD'))
  await w.pv.put(Int16Array.of(7, 8, 9, 10, 11))
  t.same(Array.from(w.pv.get().value as Int16Array), [7, 8, 9, 10, 11], 'the value is NORD elements long')
  await w.pv.put(Int16Array.of(7, 8, 9, 10, 11))
  t.equal(events.length, 2, 'a waveform posts on every write (MPST Always)')
  await w.pv.put(new Int16Array(25).fill(1))
  t.equal(w.pv.get().value.length, 10, 'cut to NELM')
  t.same(nord.map((e) => num(e.state.value)), [5, 10])

  t.equal(record({ name: 'S:us', type: 'waveform', ftvl: 'USHORT', nelm: 4 }).pv.base, DbrBase.LONG, 'USHORT travels as DBR_LONG')
  t.equal(record({ name: 'S:ul', type: 'waveform', ftvl: 'ULONG', nelm: 4 }).pv.base, DbrBase.DOUBLE, 'ULONG travels as DBR_DOUBLE')
  const strings = record({ name: 'S:sw', type: 'waveform', ftvl: 'STRING', nelm: 3, value: ['a', 'b'] })
  t.same(strings.pv.get().value, ['a', 'b'])
  const big = record({ name: 'S:big', type: 'waveform', ftvl: 'DOUBLE', nelm: 1_000_000, pattern: 'sine' })
  const v = big.pv.get().value as Float64Array
  t.equal(v.length, 1_000_000)
  t.equal(v[0], 0)
  t.ok(Math.abs((v[250_000] as number) - 1) < 1e-12, 'one period of a sine')
  t.equal(num(field(big, 'NORD').get().value), 1_000_000)
})

t.test('CHAR waveforms carry long strings with a NUL terminator', async t => {
  const w = record({ name: 'S:note', type: 'waveform', ftvl: 'CHAR', nelm: 256, value: 'hello' })
  t.equal(w.pv.base, DbrBase.CHAR)
  t.same(Array.from(w.pv.get().value as Uint8Array), [104, 101, 108, 108, 111, 0])
  t.equal(w.text, 'hello')
  await w.pv.put(charsFromString('/data/tst/2026', 256))
  t.equal(w.text, '/data/tst/2026')
  t.equal(stringFromChars(charsFromString('x'.repeat(300), 256)), 'x'.repeat(255), 'cut to NELM-1 bytes and a NUL')
})

t.test('readOnly records and computed fields refuse writes; owners still set them', async t => {
  const r = record({ name: 'S:ro_RBV', type: 'ai', readOnly: true, value: 1 })
  await t.rejects(r.pv.put(Float64Array.of(2)), { code: ErrorCode.BAD_INPUT, message: /S:ro_RBV is read-only/ })
  await t.rejects(field(r, 'SEVR').put(Uint16Array.of(0)), { message: /SEVR is read-only/ })
  r.set(2)
  t.equal(r.number, 2)
  t.throws(() => r.set('two'), { message: /S:ro_RBV: "two" is not a number/ })
  t.throws(() => r.setField('ZNAM', 'x'), { message: /ai records have no field ZNAM/ })
})

t.test('a record without fields serves its value only; onPut sees every client write', async t => {
  const seen: number[] = []
  const r = record({ name: 'S:bare', type: 'longout', fields: false })
  r.onPut = (rec) => { seen.push(rec.number) }
  t.same(r.pvs().map((pv) => pv.name), ['S:bare'])
  await r.pv.put(Int32Array.of(4))
  t.same(seen, [4])
})

t.test('the provider finds NAME and NAME.VAL, lists names once, and refuses a PV served twice', async t => {
  const ioc = new SimIoc({ records: [{ name: 'S:a', type: 'ai' }, { name: 'S:b', type: 'bo', znam: 'Off', onam: 'On' }], motors: [], cameras: [] },
    { clock: new ManualClock() })
  t.equal(ioc.find('S:a.VAL'), ioc.find('S:a'))
  t.equal(ioc.find('S:a')?.name, 'S:a')
  t.equal(ioc.find('S:a.EGU')?.base, DbrBase.STRING)
  t.equal(ioc.find('S:a.NOPE'), undefined)
  t.notOk(ioc.names().includes('S:a.VAL'))
  t.ok(ioc.names().includes('S:b.ONAM'))
  t.same(ioc.listing().find((l) => l.name === 'S:b'), { name: 'S:b', type: 'DBR_ENUM', count: 1, access: 'read-write', device: 'S:b' })
  t.same(ioc.devices().map((d) => [d.kind, d.name, d.recordType]), [['record', 'S:a', 'ai'], ['record', 'S:b', 'bo']])
  t.throws(() => new SimIoc({ records: [{ name: 'S:m.RBV', type: 'ai' }], motors: [{ prefix: 'S:m' }], cameras: [] }),
    { code: ErrorCode.BAD_INPUT, message: /S:m\.RBV of motor S:m is already served by record S:m\.RBV/ })
})

t.test('set() of the number a record holds posts nothing; the alarm stays current when a limit moves in between', async t => {
  const clock = new ManualClock()
  const r = record({ name: 'S:cnt', type: 'longin', value: 0, high: 10 }, clock)
  const events = watch(r.pv)
  r.set(5)
  clock.advance(1)
  r.set(5)
  r.set(5.0)
  t.same(events.map((e) => [num(e.state.value), e.mask]), [[5, DbeMask.VALUE | DbeMask.LOG]], 'one post for 5, none for the repeats')
  r.setField('HIGH', 4)
  t.same([r.pv.get().status, r.pv.get().severity], [AlarmStatus.HIGH, Severity.MINOR], 'the lower limit raises the alarm at once')
  const before = events.length
  r.set(5)
  t.equal(events.length, before, 'the same value again: nothing')
  t.same([r.pv.get().status, r.pv.get().severity], [AlarmStatus.HIGH, Severity.MINOR])
  r.set(3)
  t.same([num(r.pv.get().value), r.pv.get().status, events.at(-1)?.mask], [3, AlarmStatus.NO_ALARM, DbeMask.VALUE | DbeMask.LOG | DbeMask.ALARM])
  const wave = record({ name: 'S:wf', type: 'waveform', ftvl: 'LONG', nelm: 4, value: [1] })
  const waveEvents = watch(wave.pv)
  wave.set(1)
  wave.set(1)
  t.equal(waveEvents.length, 2, 'a waveform posts every write (MPST Always)')
})
