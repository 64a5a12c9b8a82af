import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HistogramSet } from '../../src/metrics/index.js'
import { PandaDataParser, columnsFor, type FieldInfo, type StartData } from '../../src/parsers/index.js'
import { PandaCaptureLogic, PandaWriterLogic } from '../../src/pipeline/index.js'
import type { FileSummary } from '../../src/protocol/index.js'
import { PandaRecordTag } from '../../src/protocol/index.js'
import { ROWS_HEADER_BYTES, blockRowsFor, columnViews, rowsRecordLayout, writeRowsHeader } from '../../src/pipeline/index.js'
import { attachRecordReader, attachRecordWriter, attachRingControl, createRecordRing } from '../../src/shm/index.js'
import { h5dump, pandaFixturesDir, readWithH5py, requireHdf5Tools } from '../support/h5py.js'

// The writer worker's logic without the thread: ring records in, one HDF5 file per acquisition out.
requireHdf5Tools()
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-writer-logic-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const options = { format: 'FRAMED', process: 'SCALED', xml: true } as const

function setup (stem: string) {
  const sab = createRecordRing({ name: 'panda→writer', policy: 'fail-when-full', capacityBytes: 1 << 20 })
  const hist = new HistogramSet()
  const capture = new PandaCaptureLogic({
    ring: attachRecordWriter(sab), parser: new PandaDataParser(options), histograms: hist, maxRecordBytes: 1 << 16, events: { start: () => {}, end: () => {} }
  })
  const events: string[] = []
  const closed: FileSummary[] = []
  const writer = new PandaWriterLogic({
    ring: attachRecordReader(sab),
    outDir: dir,
    fileStem: stem,
    blocks: { rows: 16, bytes: 0, minRows: 1, maxRows: 16, chunkRows: 16 },
    histograms: hist,
    events: {
      fileOpened: (n, p) => events.push(`opened ${n} ${p}`),
      progress: (n, rows) => events.push(`progress ${n} ${rows}`),
      fileClosed: (f) => { closed.push(f); events.push(`closed ${f.acquisition}`) }
    }
  })
  return { sab, hist, capture, writer, events, closed }
}

t.test('a recording through capture and writer logic gives the reference datasets and every latency stage', async t => {
  const { hist, capture, writer, closed } = setup('fast')
  const bytes = readFileSync(join(pandaFixturesDir(), 'fast_dump.bin'))
  // Feed in pieces and drain between them, as the two threads would interleave.
  for (let i = 0; i < bytes.length; i += 500) {
    capture.onChunk(bytes.subarray(i, i + 500), 1)
    t.equal(await writer.drain(), 'idle')
  }
  capture.onClose()
  t.equal(await writer.drain(), 'ended')
  t.equal(closed.length, 1)
  const f = closed[0] as FileSummary
  t.equal(f.rows, 58)
  t.equal(f.endReason, 'Disarmed')
  t.equal(f.error, undefined)
  const ours = readWithH5py(f.path)
  const ref = readWithH5py(join(pandaFixturesDir(), 'fast_dump.reference.h5'))
  for (const [name, d] of Object.entries(ref.datasets)) t.same(ours.datasets[name]?.values, d.values, name)
  t.equal(ours.attrs.end_reason, 'Disarmed')
  for (const stage of ['ring.handoff_us', 'hdf5.ring_to_disk_us', 'e2e.arrival_to_disk_us']) {
    t.equal(hist.summary(stage)?.count, 58, `${stage} counts every row`)
  }
  t.equal(hist.summary('hdf5.block_write_us')?.count, 4, '58 rows in blocks of 16: 3 full blocks and the last partial one')
  hist.destroy()
})

t.test('a ring marked FAILED mid-acquisition: the file is closed with the error and stays readable', async t => {
  const { sab, hist, capture, writer, closed } = setup('failed')
  const bytes = readFileSync(join(pandaFixturesDir(), 'fast_dump.bin'))
  capture.onChunk(bytes.subarray(0, 2000), 1)
  t.equal(await writer.drain(), 'idle')
  attachRingControl(sab).fail()
  t.equal(await writer.drain(), 'failed')
  const f = closed[0] as FileSummary
  t.match(f.error, /FAILED by the supervisor/)
  t.ok(f.rows > 0)
  const ours = readWithH5py(f.path)
  t.equal(ours.datasets['COUNTER1.OUT.Max']?.values.length, f.rows)
  t.match(ours.attrs.error, /FLY_ERR_RING_FAILED/)
  t.equal(h5dump(f.path, ['-H']).status, 0)
  hist.destroy()
})

t.test('rows before any header are a protocol error', async t => {
  const sab = createRecordRing({ name: 'panda→writer', policy: 'fail-when-full', capacityBytes: 4096 })
  const w = attachRecordWriter(sab)
  const hist = new HistogramSet()
  const writer = new PandaWriterLogic({ ring: attachRecordReader(sab), outDir: dir, fileStem: 'x', blocks: { rows: 16, bytes: 0, minRows: 1, maxRows: 16, chunkRows: 16 }, histograms: hist, events: { fileOpened: () => {}, progress: () => {}, fileClosed: () => {} } })
  t.equal(w.tryWrite(new Uint8Array(ROWS_HEADER_BYTES + 8), PandaRecordTag.ROWS, 0), true)
  await t.rejects(writer.drain(), { code: 'FLY_ERR_PROTOCOL_MESSAGE', message: /rows before any acquisition header/ })
  t.equal(w.tryWrite(new Uint8Array(4), 99, 0), true)
  await t.rejects(writer.drain(), { code: 'FLY_ERR_PROTOCOL_MESSAGE', message: /unknown record tag 99/ })
  hist.destroy()
})

t.test('blocks are sized by bytes within row bounds, unless a row count is given', async t => {
  const sizing = { rows: undefined, bytes: 8 * 1024 * 1024, minRows: 10_000, maxRows: 1_048_576, chunkRows: 65_536 }
  t.equal(blockRowsFor(sizing, 36), 233_016, '8 MiB of 36-byte rows')
  t.equal(blockRowsFor(sizing, 4096), 10_000, 'never fewer than minRows')
  t.equal(blockRowsFor(sizing, 4), 1_048_576, 'never more than maxRows')
  t.equal(blockRowsFor({ ...sizing, rows: 16 }, 36), 16, 'a fixed row count wins')
})

// ---- TS_TRIG deltas -------------------------------------------------------------------------------------------

function doubleField (name: string, byteOffset: number, units: string | undefined): FieldInfo {
  return { name, type: 'double', capture: 'Value', scale: 8e-9, offset: 0, units, byteOffset, byteLength: 8 }
}

function startData (fields: FieldInfo[]): StartData {
  return { fields, missed: 0, process: 'Scaled', format: 'Framed', sampleBytes: 8 * fields.length, armTime: undefined, startTime: undefined, hwTimeOffsetNs: undefined, attributes: {} }
}

/** A writer over a fresh ring, and functions that put hand-built START / ROWS / END records into it. */
function handBuilt (stem: string) {
  const sab = createRecordRing({ name: 'panda→writer', policy: 'fail-when-full', capacityBytes: 1 << 16 })
  const ring = attachRecordWriter(sab)
  const hist = new HistogramSet()
  const writer = new PandaWriterLogic({
    ring: attachRecordReader(sab), outDir: dir, fileStem: stem, blocks: { rows: 16, bytes: 0, minRows: 1, maxRows: 16, chunkRows: 16 }, histograms: hist, events: { fileOpened: () => {}, progress: () => {}, fileClosed: () => {} }
  })
  let start: StartData | undefined
  const json = (tag: PandaRecordTag, value: unknown): void => {
    if (!ring.tryWrite(new TextEncoder().encode(JSON.stringify(value)), tag, 0)) throw new Error('ring full')
  }
  return {
    hist,
    writer,
    start (fields: FieldInfo[]) { start = startData(fields); json(PandaRecordTag.START, start) },
    /** One ROWS record: `columns[i]` is column i's values (every column the same length). */
    rows (columns: number[][]) {
      const specs = columnsFor(start as StartData)
      const n = columns[0]?.length ?? 0
      const layout = rowsRecordLayout(specs, n)
      const off = ring.reserveOffset(layout.payloadBytes)
      const payload = ring.data.subarray(off, off + layout.payloadBytes)
      columnViews(specs, payload, n, layout).forEach((view, i) => view.set(columns[i] ?? []))
      writeRowsHeader(payload, 0, n)
      ring.commit(layout.payloadBytes, PandaRecordTag.ROWS, 0)
    },
    end (samples: number) { json(PandaRecordTag.END, { end: { samples, reason: 'Ok' }, error: undefined }) }
  }
}

t.test('TS_TRIG deltas go into panda.ts_trig_delta_us, exact to the µs, carried across batches, never across acquisitions', async t => {
  const h = handBuilt('ts-trig')
  h.start([doubleField('INENC1.VAL', 0, 'deg'), doubleField('PCAP.TS_TRIG', 8, 's')])
  // Batch 1: deltas 1000, 1500 µs. Batch 2: 1000 (from the last row of batch 1), 1000, 2000 µs.
  h.rows([[0, 1, 2], [0.001, 0.002, 0.0035]])
  t.equal(await h.writer.drain(), 'idle')
  t.same(h.hist.summary('panda.ts_trig_delta_us'), { count: 2, min: 1000, p50: 1000, p90: 1500, p99: 1500, p999: 1500, max: 1500 })
  h.rows([[3, 4, 5], [0.0045, 0.0055, 0.0075]])
  h.end(6)
  t.equal(await h.writer.drain(), 'idle')
  t.same(h.hist.summary('panda.ts_trig_delta_us'), { count: 5, min: 1000, p50: 1000, p90: 2000, p99: 2000, p999: 2000, max: 2000 },
    'five deltas for six rows: the batch boundary gives one')

  // A second acquisition restarts TS_TRIG from 0: no delta spans the two (it would be negative). Units ms here.
  h.start([doubleField('PCAP.TS_TRIG', 0, 'ms')])
  h.rows([[0.25, 0.5]])
  h.end(2)
  t.equal(await h.writer.drain(), 'idle')
  t.same(h.hist.summary('panda.ts_trig_delta_us'), { count: 6, min: 250, p50: 1000, p90: 2000, p99: 2000, p999: 2000, max: 2000 },
    'one more delta, 0.25 ms = 250 µs, and none from 0.0075 s to 0.25 ms')
  h.hist.destroy()
})

t.test('a run of equal deltas is recorded once with its count, and the rows still reach the file', async t => {
  const h = handBuilt('ts-trig-run')
  h.start([doubleField('PCAP.TS_TRIG', 0, undefined)])
  const ts = Array.from({ length: 40 }, (_, i) => 10 + i * 100e-6)
  h.rows([ts.slice(0, 25)])
  h.rows([ts.slice(25)])
  h.end(40)
  t.equal(await h.writer.drain(), 'idle')
  t.same(h.hist.summary('panda.ts_trig_delta_us'), { count: 39, min: 100, p50: 100, p90: 100, p99: 100, p999: 100, max: 100 },
    'units default to s; 10 s + i × 100 µs rounds to exactly 100 µs each')
  const f = h.writer.files[0] as FileSummary
  t.equal(f.rows, 40)
  t.same(readWithH5py(f.path).datasets['PCAP.TS_TRIG.Value']?.values, ts)
  h.hist.destroy()
})

t.test('no TS_TRIG histogram without PCAP.TS_TRIG, or with units the writer does not know', async t => {
  const h = handBuilt('no-ts-trig')
  h.start([doubleField('INENC1.VAL', 0, 'deg')])
  h.rows([[1, 2, 3]])
  h.end(3)
  h.start([doubleField('PCAP.TS_TRIG', 0, 'fortnight')])
  h.rows([[1, 2, 3]])
  h.end(3)
  t.equal(await h.writer.drain(), 'idle')
  t.equal(h.hist.summary('panda.ts_trig_delta_us'), undefined)
  t.equal(h.writer.files.length, 2)
  h.hist.destroy()
})
