import t, { type Test } from 'tap'
import { ErrorCode, isFlyScanError } from '../../src/errors.js'
import { composeRun, packEventPage, unpackEventPage } from '../../src/documents/index.js'
import type { DataKey, Document, DocumentName, RunBundle } from '../../src/documents/index.js'
import { documentErrors, validateDocument } from '../support/schemas.js'

const motorKey: DataKey = { dtype: 'number', shape: [], source: 'PV:XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr.RBV', units: 'deg', precision: 3, dtype_numpy: '<f8' }
const detKey: DataKey = { dtype: 'integer', shape: [], source: 'sim:det', dtype_numpy: '<i4' }
const frameKey: DataKey = { dtype: 'array', shape: [544, 728], source: 'PV:XF:31ID1-ES{GigE-Cam:1}HDF1:FullFileName_RBV', external: 'STREAM:', dtype_numpy: '|u1' }
const counterKey: DataKey = { dtype: 'number', shape: [], source: 'panda1:pcap', external: 'STREAM:', dtype_numpy: '<f8' }

const metadata = {
  scan_id: 7,
  plan_name: 'fly',
  plan_type: 'generator',
  plan_args: { numImages: 10, motor: 'rot_motor' },
  hints: { dimensions: [[['rot_motor'], 'primary']] },
  beamline_id: 'tst',
  cycle: '2025-2',
  data_session: 'pass-56789',
  detectors: ['manta1', 'panda1']
}

function expectBadInput (t: Test, fn: () => unknown, pattern: RegExp, what: string): void {
  try {
    fn()
    t.fail(`${what}: expected FlyScanError BAD_INPUT`)
  } catch (err) {
    t.ok(isFlyScanError(err, ErrorCode.BAD_INPUT), `${what}: BAD_INPUT`)
    t.match((err as Error).message, pattern, `${what}: message names it`)
  }
}

function fullRun (): { run: RunBundle, docs: Array<[DocumentName, Document]> } {
  const docs: Array<[DocumentName, Document]> = []
  const run = composeRun({ metadata })
  docs.push(['start', run.startDoc])
  const primary = run.composeDescriptor({
    name: 'primary',
    dataKeys: { rot_motor: motorKey, det: detKey },
    objectKeys: { rot_motor: ['rot_motor'], det: ['det'] },
    configuration: { rot_motor: { data: { rot_motor_velocity: 90 }, timestamps: { rot_motor_velocity: 1.5 }, data_keys: { rot_motor_velocity: { dtype: 'number', shape: [], source: 'PV:XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr.VELO' } } } },
    hints: { rot_motor: { fields: ['rot_motor'] }, det: { fields: ['det'] } }
  })
  docs.push(['descriptor', primary.descriptorDoc])
  for (let i = 0; i < 3; i++) docs.push(['event', primary.composeEvent({ data: { rot_motor: i * 1.5, det: 100 + i }, timestamps: { rot_motor: 1000 + i, det: 1000 + i } })])
  docs.push(['event_page', primary.composeEventPage({ data: { rot_motor: [4.5, 6], det: [103, 104] }, timestamps: { rot_motor: [1003, 1004], det: [1003, 1004] } })])
  const flyStream = run.composeDescriptor({ name: 'manta1_stream', dataKeys: { manta1_image: frameKey, panda1_counter: counterKey } })
  docs.push(['descriptor', flyStream.descriptorDoc])
  const frames = run.composeStreamResource({ dataKey: 'manta1_image', mimetype: 'application/x-hdf5', uri: 'file://localhost/tmp/tst/manta1.h5', parameters: { dataset: '/entry/data/data', chunk_shape: [1, 544, 728] } })
  const counters = run.composeStreamResource({ dataKey: 'panda1_counter', mimetype: 'application/x-hdf5', uri: 'file://localhost/tmp/tst/panda1.h5', parameters: { dataset: '/COUNTER1.OUT.Value', chunk_shape: [1024] } })
  docs.push(['stream_resource', frames.streamResourceDoc], ['stream_resource', counters.streamResourceDoc])
  docs.push(['stream_datum', frames.composeStreamDatum({ descriptor: flyStream.descriptorDoc.uid, indices: { start: 0, stop: 4 } })])
  docs.push(['stream_datum', counters.composeStreamDatum({ descriptor: flyStream.descriptorDoc.uid, indices: { start: 0, stop: 4 } })])
  docs.push(['stream_datum', frames.composeStreamDatum({ descriptor: flyStream.descriptorDoc.uid, indices: { start: 4, stop: 10 } })])
  docs.push(['stream_datum', counters.composeStreamDatum({ descriptor: flyStream.descriptorDoc.uid, indices: { start: 4, stop: 10 } })])
  docs.push(['stop', run.composeStop({ exitStatus: 'success' })])
  return { run, docs }
}

t.test('a full run composes schema-valid documents, linked together', async t => {
  const { run, docs } = fullRun()
  for (const [name, doc] of docs) t.doesNotThrow(() => { validateDocument(name, doc) }, `${name} validates`)
  t.same(docs.map(([n]) => n), ['start', 'descriptor', 'event', 'event', 'event', 'event_page', 'descriptor', 'stream_resource', 'stream_resource', 'stream_datum', 'stream_datum', 'stream_datum', 'stream_datum', 'stop'])

  const start = run.startDoc
  t.match(start.uid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'uuid4')
  t.ok(Math.abs(start.time - Date.now() / 1000) < 60, 'time is seconds since the epoch')
  t.equal(start.scan_id, 7)
  t.equal(start.data_session, 'pass-56789')
  t.same(start.detectors, ['manta1', 'panda1'], 'any other metadata is carried')

  const [, d1] = docs[1] as ['descriptor', Document]
  const descriptor = d1 as import('../../src/documents/index.js').EventDescriptor
  t.equal(descriptor.run_start, start.uid)
  t.equal(descriptor.name, 'primary')
  const events = docs.filter(([n]) => n === 'event').map(([, d]) => d as import('../../src/documents/index.js').Event)
  t.same(events.map(e => e.seq_num), [1, 2, 3], 'seq_num counts from 1 per descriptor')
  t.ok(events.every(e => e.descriptor === descriptor.uid))
  const page = docs[5]?.[1] as import('../../src/documents/index.js').EventPage
  t.same(page.seq_num, [4, 5], 'a page continues the stream')
  t.equal(page.uid.length, 2)

  const datums = docs.filter(([n]) => n === 'stream_datum').map(([, d]) => d as import('../../src/documents/index.js').StreamDatum)
  const resources = docs.filter(([n]) => n === 'stream_resource').map(([, d]) => d as import('../../src/documents/index.js').StreamResource)
  t.same(datums.map(d => d.uid), [`${resources[0]?.uid}/0`, `${resources[1]?.uid}/0`, `${resources[0]?.uid}/1`, `${resources[1]?.uid}/1`])
  t.same(datums.map(d => d.seq_nums), [{ start: 1, stop: 5 }, { start: 1, stop: 5 }, { start: 5, stop: 11 }, { start: 5, stop: 11 }],
    'resources of several keys of one stream describe the same events')
  t.ok(resources.every(r => r.run_start === start.uid && r.mimetype === 'application/x-hdf5'))

  const stop = docs.at(-1)?.[1] as import('../../src/documents/index.js').RunStop
  t.equal(stop.run_start, start.uid)
  t.equal(stop.exit_status, 'success')
  t.equal(stop.reason, '')
  t.same(stop.num_events, { primary: 5, manta1_stream: 10 }, 'num_events counts events, page rows and streamed seq_nums')
})

t.test('options: uid, time, injected clock, explicit seq nums', async t => {
  let now = 1_700_000_000.25
  const run = composeRun({ uid: 'run-1', now: () => now, metadata: { plan_name: 'count' } })
  t.equal(run.startDoc.uid, 'run-1')
  t.equal(run.startDoc.time, 1_700_000_000.25)
  now += 1
  const d = run.composeDescriptor({ name: 'primary', dataKeys: { det: detKey } })
  t.equal(d.descriptorDoc.time, 1_700_000_001.25)
  t.same(d.descriptorDoc.object_keys, {})
  t.same(d.descriptorDoc.configuration, {})
  const e = d.composeEvent({ data: { det: 1 }, timestamps: { det: 2 }, seqNum: 10, time: 5, filled: { det: true } })
  t.equal(e.seq_num, 10)
  t.equal(e.time, 5)
  t.same(e.filled, { det: true })
  t.equal(d.composeEvent({ data: { det: 1 }, timestamps: { det: 2 } }).seq_num, 11, 'the counter follows an explicit seq_num')
  const stop = run.composeStop({ exitStatus: 'abort', reason: 'user abort', time: 9 })
  t.equal(stop.time, 9)
  t.equal(stop.reason, 'user abort')
  t.same(stop.num_events, { primary: 2 })
  validateDocument('stop', stop)
})

t.test('a descriptor with no events still appears in num_events', async t => {
  const run = composeRun()
  run.composeDescriptor({ name: 'baseline', dataKeys: { det: detKey } })
  const stop = run.composeStop({ exitStatus: 'fail', reason: 'motor stalled' })
  t.same(stop.num_events, { baseline: 0 })
  validateDocument('start', run.startDoc)
  validateDocument('stop', stop)
})

t.test('run_stop carries extra keys (a timing report) and stays schema-valid; its own fields cannot be replaced', async t => {
  const run = composeRun()
  const timing = { verdict: 'ok', cameras: [{ name: 'manta1', expected: 21, received: 21 }], tsTrig: { p99: 3.2 } }
  for (const key of ['reason', 'uid', 'num_events', 'exit_status', 'a.b', 'a/b', '']) {
    expectBadInput(t, () => run.composeStop({ exitStatus: 'success', extra: { [key]: 1 } }), /extra key/, `extra key ${JSON.stringify(key)} refused`)
  }
  const stop = run.composeStop({ exitStatus: 'success', extra: { timing } })
  t.same(stop.timing, timing)
  t.equal(stop.exit_status, 'success')
  validateDocument('stop', stop)
})

t.test('bad inputs are refused with BAD_INPUT naming the key', async t => {
  expectBadInput(t, () => composeRun({ metadata: { 'sample.name': 'x' } }), /"sample\.name"/, 'metadata key with a dot')
  expectBadInput(t, () => composeRun({ metadata: { sample: { 'a/b': 1 } } }), /"a\/b"/, 'nested metadata key with a slash')
  expectBadInput(t, () => composeRun({ metadata: { scan_id: 1.5 } }), /scan_id 1\.5/, 'non-integer scan_id')
  expectBadInput(t, () => composeRun({ metadata: { uid: 'x' } }), /"uid"/, 'uid in metadata')
  expectBadInput(t, () => composeRun({ time: Number.NaN }), /time NaN/, 'NaN time')

  const run = composeRun()
  expectBadInput(t, () => run.composeDescriptor({ name: '', dataKeys: {} }), /stream name ""/, 'empty stream name')
  expectBadInput(t, () => run.composeDescriptor({ name: 'primary', dataKeys: { x: { dtype: 'float' as 'number', shape: [], source: 's' } } }), /"x" has dtype "float"/, 'bad dtype')
  expectBadInput(t, () => run.composeDescriptor({ name: 'primary', dataKeys: { x: { dtype: 'array', shape: [-1], source: 's' } } }), /"x" has shape \[-1\]/, 'bad shape')
  expectBadInput(t, () => run.composeDescriptor({ name: 'primary', dataKeys: { x: { ...detKey, dtype_numpy: 'int32' } } }), /"x" has dtype_numpy "int32"/, 'bad dtype_numpy')
  expectBadInput(t, () => run.composeDescriptor({ name: 'primary', dataKeys: { x: detKey }, objectKeys: { det: ['y'] } }), /names "y", which is not a data key/, 'object_keys naming an unknown key')
  expectBadInput(t, () => run.composeDescriptor({
    name: 'primary',
    dataKeys: { x: detKey },
    configuration: { det: { data: { gain: 1 }, timestamps: {}, data_keys: {} } }
  }), /data key "gain" is not in its data_keys/, 'configuration data without its data key')

  const primary = run.composeDescriptor({ name: 'primary', dataKeys: { x: detKey, y: detKey } })
  expectBadInput(t, () => run.composeDescriptor({ name: 'primary', dataKeys: { x: detKey } }), /same keys/, 'second descriptor of a stream with other keys')
  t.doesNotThrow(() => run.composeDescriptor({ name: 'primary', dataKeys: { y: detKey, x: detKey } }), 'same keys: a new descriptor of the stream is fine')
  expectBadInput(t, () => primary.composeEvent({ data: { x: 1, y: 2, z: 3 }, timestamps: { x: 1, y: 1 } }), /event data key "z" is not a data key/, 'event data key not in the descriptor')
  expectBadInput(t, () => primary.composeEvent({ data: { x: 1 }, timestamps: { x: 1 } }), /missing data key "y"/, 'event data missing a key')
  expectBadInput(t, () => primary.composeEvent({ data: { x: 1, y: 2 }, timestamps: { x: 1, y: Number.NaN } }), /timestamp of "y"/, 'NaN timestamp')
  expectBadInput(t, () => primary.composeEvent({ data: { x: 1, y: 2 }, timestamps: { x: 1, y: 1 }, seqNum: 0 }), /seq_num 0/, 'seq_num 0')
  expectBadInput(t, () => primary.composeEvent({ data: { x: 1, y: 2 }, timestamps: { x: 1, y: 1 }, filled: { w: false } }), /filled key "w"/, 'filled key not in the descriptor')
  expectBadInput(t, () => primary.composeEventPage({ data: { x: [1, 2], y: [1] }, timestamps: { x: [1, 2], y: [1, 2] } }), /column data\.y has 1 rows, expected 2/, 'ragged page')
  expectBadInput(t, () => primary.composeEventPage({ data: { x: [], y: [] }, timestamps: { x: [], y: [] } }), /at least one row/, 'empty page')
  expectBadInput(t, () => primary.composeEventPage({ data: { x: [1], q: [1] }, timestamps: { x: [1], y: [1] } }), /event_page data key "q"/, 'page key not in the descriptor')

  const stream = run.composeDescriptor({ name: 'manta1_stream', dataKeys: { manta1_image: frameKey, det: detKey } })
  const uid = stream.descriptorDoc.uid
  expectBadInput(t, () => run.composeStreamResource({ dataKey: 'manta1_image', mimetype: '', uri: 'file:///x.h5', parameters: {} }), /mimetype ""/, 'empty mimetype')
  const res = run.composeStreamResource({ dataKey: 'manta1_image', mimetype: 'application/x-hdf5', uri: 'file:///x.h5', parameters: {} })
  expectBadInput(t, () => res.composeStreamDatum({ descriptor: uid, indices: { start: 5, stop: 2 } }), /indices\.stop 2 is less than indices\.start 5/, 'indices stop < start')
  expectBadInput(t, () => res.composeStreamDatum({ descriptor: uid, indices: { start: -1, stop: 2 } }), /indices\.start -1 is negative/, 'negative indices')
  expectBadInput(t, () => res.composeStreamDatum({ descriptor: uid, indices: { start: 0, stop: 2 }, seqNums: { start: 1, stop: 5 } }), /cover 4 events but indices 0\.\.2 cover 2 rows/, 'seq_nums and indices of different lengths')
  expectBadInput(t, () => res.composeStreamDatum({ descriptor: 'nope', indices: { start: 0, stop: 2 } }), /descriptor "nope" is not a descriptor/, 'unknown descriptor')
  expectBadInput(t, () => res.composeStreamDatum({ descriptor: primary.descriptorDoc.uid, indices: { start: 0, stop: 2 } }), /has no data key "manta1_image"/, 'descriptor without the data key')
  const notStreamed = run.composeStreamResource({ dataKey: 'det', mimetype: 'application/x-hdf5', uri: 'file:///x.h5', parameters: {} })
  expectBadInput(t, () => notStreamed.composeStreamDatum({ descriptor: uid, indices: { start: 0, stop: 2 } }), /"det" .*is not external "STREAM:"/, 'data key not external')

  expectBadInput(t, () => run.composeStop({ exitStatus: 'ok' as 'success' }), /exit_status "ok"/, 'bad exit_status')
  run.composeStop({ exitStatus: 'success' })
  expectBadInput(t, () => run.composeStop({ exitStatus: 'success' }), /already stopped/, 'second stop')
  expectBadInput(t, () => primary.composeEvent({ data: { x: 1, y: 2 }, timestamps: { x: 1, y: 1 } }), /already stopped/, 'event after stop')
  expectBadInput(t, () => res.composeStreamDatum({ descriptor: uid, indices: { start: 0, stop: 2 } }), /already stopped/, 'datum after stop')
})

t.test('events ↔ page round trip', async t => {
  const run = composeRun()
  const d = run.composeDescriptor({ name: 'primary', dataKeys: { x: detKey, img: { ...frameKey, external: undefined, shape: [2] } } })
  const events = [0, 1, 2].map(i => d.composeEvent({ data: { x: i, img: [i, i] }, timestamps: { x: 10 + i, img: 20 + i }, filled: { img: true } }))
  const page = packEventPage(events)
  validateDocument('event_page', page)
  t.same(page.seq_num, [1, 2, 3])
  t.same(page.data.x, [0, 1, 2])
  t.same(page.timestamps.img, [20, 21, 22])
  t.same(page.filled.img, [true, true, true])
  const back = unpackEventPage(page)
  t.same(back, events, 'unpack(pack(events)) is the events')
  for (const e of back) validateDocument('event', e)
  const other = run.composeDescriptor({ name: 'baseline', dataKeys: { x: detKey } }).composeEvent({ data: { x: 1 }, timestamps: { x: 1 } })
  expectBadInput(t, () => packEventPage([events[0]!, other]), /has descriptor/, 'mixed descriptors')
  expectBadInput(t, () => packEventPage([]), /no events/, 'no events')
})

t.test('the schema helper rejects what the schemas reject', async t => {
  const { docs } = fullRun()
  const event = docs[2]?.[1]
  t.match(documentErrors('event', { ...event, extra: 1 }), /unevaluated properties/, 'unknown event field (2020-12 unevaluatedProperties)')
  t.match(documentErrors('stop', { ...docs.at(-1)?.[1], exit_status: 'ok' }), /exit_status/)
  t.match(documentErrors('stream_datum', { ...docs[9]?.[1], indices: { start: 0 } }), /indices/)
  t.match(documentErrors('start', { time: 1 }), /uid/)
  t.throws(() => { validateDocument('descriptor', { uid: 'x', time: 1, run_start: 'r', data_keys: { a: { dtype: 'number', shape: [] } } }) }, /source/)
})
