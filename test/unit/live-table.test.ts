import t from 'tap'
import { formatClockTime, formatValue, liveTable, LiveTable } from '../../src/cli/live-table.js'
import { SimDetector, SimMotor } from '../../src/devices/index.js'
import { composeRun, packEventPage, type DataKey, type RunStart } from '../../src/documents/index.js'
import { RunEngine, VirtualClock, msg, type Plan } from '../../src/engine/index.js'

// The live table (bluesky's BestEffortCallback table): exact output for a step scan run by the real RunEngine on
// simulated devices in virtual time, and for composed documents that exercise precision, skipped keys and pages.
const T0 = 1_700_000_000 // 2023-11-14 22:13:20 UTC

function * count (motor: SimMotor, det: SimDetector, points: readonly number[]): Plan {
  yield msg.stage(det)
  yield msg.openRun({ plan_name: 'count', plan_args: {} })
  for (const p of points) {
    yield msg.set(motor, p, { group: 'move' })
    yield msg.wait('move')
    yield msg.trigger(det, { group: 'det' })
    yield msg.wait('det')
    yield msg.create('primary')
    yield msg.read(motor)
    yield msg.read(det)
    yield msg.save()
    yield msg.sleep(0.25)
  }
  yield msg.closeRun({})
  yield msg.unstage(det)
}

t.test('a step scan by the RunEngine on SimMotor/SimDetector prints the bluesky-like table', async t => {
  const motor = new SimMotor({ name: 'rot', velocity: 1000, updatePeriodMs: 1 })
  const det = new SimDetector({ name: 'det', acquireTime: 0.001 })
  await Promise.all([motor.connect({ mock: true }), det.connect({ mock: true })])
  const RE = new RunEngine({ clock: new VirtualClock({ start: T0 }), firstScanId: 3 })
  const lines: string[] = []
  let uid = ''
  RE.subscribe((name, doc) => { if (name === 'start') uid = (doc as RunStart).uid })
  RE.subscribe(liveTable({ write: (l) => lines.push(l), utc: true }))
  const result = await RE.run(count(motor, det, [0, 1.5, 3]))
  t.equal(result.outcome, 'completed')
  t.same(lines, [
    '',
    'Transient Scan ID: 3     Time: 2023-11-14 22:13:20',
    `Persistent Unique Scan ID: '${uid}'`,
    "New stream: 'primary'",
    '+-----------+------------+------------+------------------+------------+',
    '|   seq_num |       time |        rot | rot-userSetpoint |        det |',
    '+-----------+------------+------------+------------------+------------+',
    '|         1 | 22:13:20.0 |      0.000 |            0.000 |       1001 |',
    '|         2 | 22:13:20.2 |      1.500 |            1.500 |       1002 |',
    '|         3 | 22:13:20.5 |      3.000 |            3.000 |       1003 |',
    '+-----------+------------+------------+------------------+------------+',
    `generator count ['${uid.slice(0, 8)}'] (scan num: 3)`,
    ''
  ])
})

t.test('composed documents: precision, skipped array/external keys, other streams, pages, failed runs', async t => {
  const lines: string[] = []
  const table = new LiveTable({ write: (l) => lines.push(l), utc: true })
  const run = composeRun({ metadata: { scan_id: 12, plan_name: 'fly' }, time: T0 })
  const keys: Record<string, DataKey> = {
    energy_monochromator: { dtype: 'number', shape: [], source: 'PV:E', precision: 5 },
    i0: { dtype: 'number', shape: [], source: 'PV:I0' },
    frame: { dtype: 'array', shape: [4, 4], source: 'cam' },
    pcap: { dtype: 'number', shape: [], source: 'panda', external: 'STREAM:' },
    mode: { dtype: 'string', shape: [], source: 'PV:M' }
  }
  table.callback('start', run.startDoc)
  const baseline = run.composeDescriptor({ name: 'baseline', dataKeys: { x: { dtype: 'number', shape: [], source: 'x' } }, time: T0 })
  table.callback('descriptor', baseline.descriptorDoc)
  table.callback('event', baseline.composeEvent({ data: { x: 1 }, timestamps: { x: T0 }, time: T0 }))
  const primary = run.composeDescriptor({ name: 'primary', dataKeys: keys, time: T0 })
  table.callback('descriptor', primary.descriptorDoc)
  const data = { energy_monochromator: 7112.123456, i0: -0.5, frame: [[0]], pcap: 0, mode: 'a much too long string' }
  const ts = { energy_monochromator: T0, i0: T0, frame: T0, pcap: T0, mode: T0 }
  table.callback('event', primary.composeEvent({ data, timestamps: ts, time: T0 + 3723.96 }))
  const second = primary.composeEvent({ data: { ...data, i0: 1e12, mode: 'ok' }, timestamps: ts, time: T0 + 4 })
  const third = primary.composeEvent({ data: { ...data, i0: 2, mode: 'ok' }, timestamps: ts, time: T0 + 4.05 })
  table.callback('event_page', packEventPage([second, third]))
  table.callback('stop', run.composeStop({ exitStatus: 'fail', reason: 'beam dump', time: T0 + 5 }))
  t.same(lines, [
    '',
    'Transient Scan ID: 12     Time: 2023-11-14 22:13:20',
    `Persistent Unique Scan ID: '${run.startDoc.uid}'`,
    "New stream: 'primary'",
    '+-----------+------------+----------------------+------------+------------+',
    '|   seq_num |       time | energy_monochromator |         i0 |       mode |',
    '+-----------+------------+----------------------+------------+------------+',
    '|         1 | 23:15:23.9 |           7112.12346 |     -0.500 | a much to~ |',
    '|         2 | 22:13:24.0 |           7112.12346 |  1.000e+12 |         ok |',
    '|         3 | 22:13:24.0 |           7112.12346 |      2.000 |         ok |',
    '+-----------+------------+----------------------+------------+------------+',
    `generator fly ['${run.startDoc.uid.slice(0, 8)}'] (scan num: 12)`,
    'exit_status fail: beam dump',
    ''
  ])
  for (const l of lines.slice(4, 11)) t.equal(l.length, lines[4]?.length, `fixed width: ${l}`)
})

t.test('hinted fields choose the columns; options.fields overrides them; a run without events prints no table', async t => {
  const run = composeRun({ metadata: { scan_id: 1, plan_name: 'scan' }, time: T0 })
  const dataKeys: Record<string, DataKey> = {
    rot: { dtype: 'number', shape: [], source: 'r', precision: 1 },
    'rot-userSetpoint': { dtype: 'number', shape: [], source: 'r.VAL' },
    det: { dtype: 'integer', shape: [], source: 'd' }
  }
  const descriptor = run.composeDescriptor({ name: 'primary', dataKeys, hints: { rot: { fields: ['rot'] }, det: { fields: ['det'] } }, time: T0 })
  const event = descriptor.composeEvent({ data: { rot: 0.25, 'rot-userSetpoint': 0.25, det: 7 }, timestamps: { rot: T0, 'rot-userSetpoint': T0, det: T0 }, time: T0 })
  const table = (options: { fields?: string[] }): string[] => {
    const lines: string[] = []
    const feed = liveTable({ write: (l) => lines.push(l), utc: true, ...options })
    feed('start', run.startDoc)
    feed('descriptor', descriptor.descriptorDoc)
    feed('event', event)
    return lines.slice(5, 8)
  }
  t.same(table({}), ['|   seq_num |       time |        rot |        det |', '+-----------+------------+------------+------------+', '|         1 | 22:13:20.0 |        0.3 |          7 |'])
  t.same(table({ fields: ['det', 'rot-userSetpoint', 'missing'] }), [
    '|   seq_num |       time |        det | rot-userSetpoint |',
    '+-----------+------------+------------+------------------+',
    '|         1 | 22:13:20.0 |          7 |            0.250 |'
  ])
  const lines: string[] = []
  const feed = liveTable({ write: (l) => lines.push(l), utc: true })
  const empty = composeRun({ metadata: { scan_id: 2, plan_name: 'count' }, time: T0 })
  feed('start', empty.startDoc)
  feed('stop', empty.composeStop({ exitStatus: 'success', time: T0 }))
  t.same(lines.slice(3), [`generator count ['${empty.startDoc.uid.slice(0, 8)}'] (scan num: 2)`, ''])
})

t.test('cell formatting', async t => {
  const num: DataKey = { dtype: 'number', shape: [], source: 's' }
  t.equal(formatValue(1.23456, { ...num, precision: 2 }, 10), '1.23')
  t.equal(formatValue(1.23456, num, 10), '1.235', 'default precision 3')
  t.equal(formatValue(1.23456, num, 10, 1), '1.2', 'injected default precision')
  t.equal(formatValue(42, { ...num, dtype: 'integer' }, 10), '42', 'integers whole')
  t.equal(formatValue(Number.NaN, num, 10), 'NaN')
  t.equal(formatValue(true, { ...num, dtype: 'boolean' }, 10), 'true')
  t.equal(formatValue(undefined, num, 10), '')
  t.equal(formatClockTime(T0 + 0.99, true), '22:13:20.9', 'the tenth is truncated')
  t.equal(formatClockTime(T0 + 86_400 + 3600 * 2, true), '00:13:20.0')
})
