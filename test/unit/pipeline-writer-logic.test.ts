import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HistogramSet } from '../../src/metrics/index.js'
import { PandaDataParser } from '../../src/parsers/index.js'
import { PandaCaptureLogic, PandaWriterLogic } from '../../src/pipeline/index.js'
import type { FileSummary } from '../../src/protocol/index.js'
import { PandaRecordTag } from '../../src/protocol/index.js'
import { ROWS_HEADER_BYTES, blockRowsFor } from '../../src/pipeline/index.js'
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
