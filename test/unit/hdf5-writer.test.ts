import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_BLOCK_ROWS, PandaHdfWriter, pandaFileLayout } from '../../src/hdf5/index.js'
import type { BlockWritten } from '../../src/hdf5/index.js'
import type { FieldInfo, StartData } from '../../src/parsers/index.js'
import { ErrorCode, FlyScanError, isFlyScanError } from '../../src/errors.js'
import { h5dump, packRows, readWithH5py, requireHdf5Tools } from '../support/h5py.js'

const fields: FieldInfo[] = [
  { name: 'PCAP.BITS2', type: 'uint32', capture: 'Value', scale: undefined, offset: undefined, units: undefined, byteOffset: 0, byteLength: 4 },
  { name: 'COUNTER1.OUT', type: 'double', capture: 'Max', scale: 1, offset: 0, units: 'mm', byteOffset: 4, byteLength: 8 },
  { name: 'PCAP.TS_TRIG', type: 'double', capture: 'Value', scale: 8e-9, offset: 0, units: 's', byteOffset: 12, byteLength: 8 }
]
const start: StartData = {
  fields,
  missed: 0,
  process: 'Scaled',
  format: 'Framed',
  sampleBytes: 20,
  armTime: '2025-06-01T10:00:00.123456789Z',
  startTime: '2025-06-01T10:00:00.200000000Z',
  hwTimeOffsetNs: 1234567890123,
  attributes: {}
}
const rowsFrom = (first: number, n: number): number[][] =>
  Array.from({ length: n }, (_, k) => [first + k, (first + k) * 1.5, (first + k) * 1e-3])

requireHdf5Tools()
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-hdf5-writer-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('layout: one unlimited chunked dataset per field, header attributes', async t => {
  const layout = pandaFileLayout(start)
  t.same(layout.datasets.map(d => [d.path, d.dtype, d.maxshape, d.chunks, d.units]), [
    ['/PCAP.BITS2.Value', 'uint32', [null], [DEFAULT_BLOCK_ROWS], undefined],
    ['/COUNTER1.OUT.Max', 'float64', [null], [DEFAULT_BLOCK_ROWS], 'mm'],
    ['/PCAP.TS_TRIG.Value', 'float64', [null], [DEFAULT_BLOCK_ROWS], 's']
  ])
  t.same(layout.attributes, {
    arm_time: start.armTime, start_time: start.startTime, hw_time_offset_ns: start.hwTimeOffsetNs
  })
})

t.test('an acquisition with no rows gives an empty but valid file', async t => {
  const path = join(dir, 'empty.h5')
  const w = await PandaHdfWriter.create(path, start)
  // Readable already before close (created, SWMR, flushed).
  const live = readWithH5py(path, { swmr: true })
  t.same(Object.keys(live.datasets).sort(), ['COUNTER1.OUT.Max', 'PCAP.BITS2.Value', 'PCAP.TS_TRIG.Value'])
  w.close({ end: { samples: 0, reason: 'Disarmed' } })
  const f = readWithH5py(path)
  for (const [name, d] of Object.entries(f.datasets)) {
    t.same(d.shape, [0], `${name} is empty`)
    t.same(d.maxshape, [null], `${name} is unlimited`)
  }
  t.equal(f.datasets['PCAP.BITS2.Value']?.dtype, 'uint32')
  t.equal(f.datasets['COUNTER1.OUT.Max']?.dtype, 'float64')
  t.same(f.datasets['COUNTER1.OUT.Max']?.attrs, { units: 'mm' })
  t.same(f.attrs, {
    arm_time: start.armTime,
    start_time: start.startTime,
    hw_time_offset_ns: 1234567890123,
    end_reason: 'Disarmed',
    samples: 0,
    rows_written: 0
  })
  t.equal(h5dump(path).status, 0, 'h5dump reads it')
})

t.test('rows are buffered and written in blocks; flush writes the partial block', async t => {
  const path = join(dir, 'blocks.h5')
  const blocks: BlockWritten[] = []
  const w = await PandaHdfWriter.create(path, start, { blockRows: 4, onBlockWritten: b => blocks.push(b) })
  t.equal(w.append(packRows(start, rowsFrom(0, 3))), 0, '3 rows: nothing written')
  t.equal(w.rowsBuffered, 3)
  t.equal(w.rowsWritten, 0)
  t.equal(w.append(packRows(start, rowsFrom(3, 6))), 8, '9 rows: two blocks of 4')
  t.equal(w.rowsBuffered, 1)
  t.equal(w.rowsWritten, 8)
  t.equal(w.bytesWritten, 8 * (4 + 8 + 8))
  t.equal(w.rowsFlushed, 0)
  t.equal(w.flush(), 1, 'flush writes the 1 buffered row')
  t.equal(w.rowsFlushed, 9)
  t.equal(w.flush(), 0, 'nothing more to write')
  t.equal(w.append(packRows(start, [])), 0, 'an empty frame')
  t.equal(w.append(packRows(start, rowsFrom(9, 2))), 0)
  t.same(blocks.map(b => [b.rows, b.rowsWritten]), [[4, 4], [4, 8], [1, 9]])
  t.ok(blocks.every(b => b.writeNs > 0), 'block timing is reported')
  w.close({ end: { samples: 11, reason: 'Ok' } })
  t.equal(w.rowsWritten, 11, 'close writes the buffered rows')
  t.same(blocks.map(b => b.rows), [4, 4, 1, 2])
  const f = readWithH5py(path)
  const expected = rowsFrom(0, 11)
  t.same(f.datasets['PCAP.BITS2.Value']?.values, expected.map(r => r[0]))
  t.same(f.datasets['COUNTER1.OUT.Max']?.values, expected.map(r => r[1]))
  t.same(f.datasets['PCAP.TS_TRIG.Value']?.values, expected.map(r => r[2]))
  t.same(f.datasets['COUNTER1.OUT.Max']?.chunks, [4], 'chunk = blockRows by default')
  t.equal(f.attrs.end_reason, 'Ok')
  t.equal(f.attrs.samples, 11)
  t.equal(f.attrs.error, undefined, 'no error attribute on a clean end')
})

t.test('a frame larger than several blocks is split across them', async t => {
  const path = join(dir, 'big.h5')
  const w = await PandaHdfWriter.create(path, start, { blockRows: 7, chunkRows: 5 })
  t.equal(w.append(packRows(start, rowsFrom(0, 30))), 28)
  w.close()
  const f = readWithH5py(path)
  t.same(f.datasets['PCAP.BITS2.Value']?.values, rowsFrom(0, 30).map(r => r[0]))
  t.same(f.datasets['PCAP.BITS2.Value']?.chunks, [5])
  t.equal(f.attrs.rows_written, 30)
  t.equal(f.attrs.end_reason, undefined, 'no END: no end_reason')
})

t.test('close after a failed acquisition records end_reason, samples and the error; file reads fine', async t => {
  const path = join(dir, 'overrun.h5')
  const w = await PandaHdfWriter.create(path, start, { blockRows: 4 })
  w.append(packRows(start, rowsFrom(0, 6)))
  w.flush()
  w.append(packRows(start, rowsFrom(6, 1)))
  const error = new FlyScanError(ErrorCode.PANDA_ACQUISITION_FAILED, 'PandA acquisition ended with Data overrun after 7 rows')
  w.close({ end: { samples: 7, reason: 'Data overrun' }, error })
  w.close({ end: { samples: 7, reason: 'Ok' } }) // idempotent: no second write
  const f = readWithH5py(path)
  t.equal(f.attrs.end_reason, 'Data overrun')
  t.equal(f.attrs.samples, 7)
  t.equal(f.attrs.rows_written, 7)
  t.equal(f.attrs.error, 'FLY_ERR_PANDA_ACQUISITION_FAILED: PandA acquisition ended with Data overrun after 7 rows')
  t.same(f.datasets['PCAP.BITS2.Value']?.values, [0, 1, 2, 3, 4, 5, 6])
  const dump = h5dump(path)
  t.equal(dump.status, 0, `h5dump: ${dump.stderr}`)
  t.match(dump.stdout, /"Data overrun"/)
})

t.test('misuse and I/O failures are FLY_ERR_HDF5 / BAD_INPUT errors naming the file', async t => {
  const path = join(dir, 'closed.h5')
  const w = await PandaHdfWriter.create(path, start)
  w.close()
  t.ok(w.closed)
  t.throws(() => w.append(packRows(start, rowsFrom(0, 1))), { code: ErrorCode.HDF5, message: /closed\.h5: append after close/ })
  t.throws(() => w.flush(), { code: ErrorCode.HDF5 })

  const missing = join(dir, 'no-such-dir', 'x.h5')
  await t.rejects(PandaHdfWriter.create(missing, start), { code: ErrorCode.HDF5, message: /no-such-dir\/x\.h5: open failed/ })
  await t.rejects(PandaHdfWriter.create(join(dir, 'b.h5'), start, { blockRows: 0 }), { code: ErrorCode.BAD_INPUT })
  try {
    await PandaHdfWriter.create(join(dir, 'bad.h5'), { ...start, sampleBytes: 12 })
    t.fail('a field past the row end must be rejected')
  } catch (err) {
    t.ok(isFlyScanError(err, ErrorCode.PANDA_PROTOCOL), 'header errors keep their code')
  }
})
