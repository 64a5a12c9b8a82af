/**
 * FrameWriterLogic + FrameHdfWriter without threads: hand-made slots in a real frame ring drained into a real file,
 * read back by h5py. Disk full is a file system that reports too few free bytes (FrameHdfWriter's injectable
 * statfs); test/integration/frame-writer-disk-full.test.ts fills a real one.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ErrorCode } from '../../src/errors.js'
import { FrameHdfWriter } from '../../src/hdf5/index.js'
import { HistogramSet } from '../../src/metrics/index.js'
import { FrameMeta, FrameWriterLogic } from '../../src/pipeline/index.js'
import { attachRingControl, attachSlotReader, attachSlotWriter, createSlotRing, type SlotWriter } from '../../src/shm/index.js'
import { h5dump, requireHdf5Tools, runPython } from '../support/h5py.js'

requireHdf5Tools()
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-frame-writer-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const W = 16
const H = 8

/** Publish frame `id` (pixels all id & 0xff, EPICS time 100 s + id ms) with arrival `arrivalNs`. */
function publish (w: SlotWriter, id: number, arrivalNs: number): boolean {
  const slot = w.tryAcquire(W * H)
  if (slot === null) return false
  slot.fill(id & 0xff, 0, W * H)
  const meta = new Uint32Array(FrameMeta.COUNT)
  meta[FrameMeta.UNIQUE_ID] = id
  meta[FrameMeta.WIDTH] = W
  meta[FrameMeta.HEIGHT] = H
  meta[FrameMeta.DTYPE] = 1
  meta[FrameMeta.EPICS_SEC] = 100
  meta[FrameMeta.EPICS_NSEC] = id * 1e6
  meta[FrameMeta.PUBLISH_DELAY_NS] = 1000
  w.publish(W * H, arrivalNs, meta)
  return true
}

const READ = `
import json, sys, h5py
with h5py.File(sys.argv[1], 'r', swmr=sys.argv[2] == '1') as f:
    d = f['/entry/data/data']
    nd = f['/entry/instrument/NDAttributes']
    e = f['/entry'].attrs.get('error', b'')
    print(json.dumps({'shape': list(d.shape), 'first': [int(x) for x in d[:, 0, 0]],
      'uid': [int(x) for x in nd['NDArrayUniqueId'][()]], 'nsec': [int(x) for x in nd['NDArrayEpicsTSnSec'][()]],
      'arrival': [float(x) for x in f['/entry/instrument/performance/arrival_ns'][()]],
      'frames_written': int(f['/entry'].attrs.get('frames_written', -1)), 'error': e.decode() if isinstance(e, bytes) else e}))
`
interface View { shape: number[], first: number[], uid: number[], nsec: number[], arrival: number[], frames_written: number, error: string }
const read = (file: string, swmr = false): View => JSON.parse(runPython(READ, [file, swmr ? '1' : '0'])) as View

async function setup (file: string, freeBytes?: (dir: string) => number): Promise<{ w: SlotWriter, logic: FrameWriterLogic, hist: HistogramSet, sab: SharedArrayBuffer, progress: number[] }> {
  const sab = createSlotRing({ name: 'cam→writer', policy: 'drop-newest', slots: 8, slotBytes: W * H })
  const hist = new HistogramSet()
  const writer = await FrameHdfWriter.create(file, { width: W, height: H, dtype: 'UInt8' }, { freeBytes, diskReserveBytes: 1000 })
  const progress: number[] = []
  let now = 5e6
  const logic = new FrameWriterLogic({ ring: attachSlotReader(sab), writer, histograms: hist, events: { progress: (n) => progress.push(n) }, nowNs: () => (now += 1e6) })
  return { w: attachSlotWriter(sab), logic, hist, sab, progress }
}

t.test('frames drained into (N, H, W) with their attributes; a flush shows them; the end closes the file', async t => {
  const file = join(dir, 'ok.h5')
  const { w, logic, hist, progress } = await setup(file)
  for (let id = 1; id <= 5; id++) publish(w, id, id * 1e6)
  t.equal(logic.drain(), 'idle')
  t.equal(logic.framesWritten, 5)
  logic.flush()
  t.same(progress, [5])
  const live = read(file, true)
  t.same(live.shape, [5, H, W], 'an SWMR reader sees the flushed frames while the file is open')
  t.same(live.uid, [1, 2, 3, 4, 5], '...and their attributes, in step')
  t.equal(live.frames_written, -1, 'not closed yet')
  for (let id = 6; id <= 7; id++) publish(w, id, id * 1e6)
  w.close()
  t.equal(logic.drain(), 'ended')
  const f = read(file)
  t.same(f.shape, [7, H, W])
  t.same(f.first, [1, 2, 3, 4, 5, 6, 7])
  t.same(f.uid, [1, 2, 3, 4, 5, 6, 7])
  t.same(f.nsec, [1e6, 2e6, 3e6, 4e6, 5e6, 6e6, 7e6])
  t.same(f.arrival, [1e6, 2e6, 3e6, 4e6, 5e6, 6e6, 7e6])
  t.equal(f.frames_written, 7)
  t.equal(f.error, '')
  t.equal(hist.summary('camera.ring_handoff_us')?.count, 7)
  t.equal(hist.summary('hdf5.frame_write_us')?.count, 7)
  t.equal(hist.summary('e2e.frame_arrival_to_disk_us')?.count, 7)
  t.equal(h5dump(file, ['-H']).status, 0)
})

t.test('disk full: DISK_FULL naming the file and the frames on disk; the ring fails; the file is closed readable', async t => {
  const file = join(dir, 'full.h5')
  let calls = 0
  const { w, logic, sab } = await setup(file, () => (++calls <= 3 ? 1e9 : 500))
  for (let id = 1; id <= 5; id++) publish(w, id, id * 1e6)
  t.equal(logic.drain(), 'failed')
  t.equal(logic.error?.code, ErrorCode.DISK_FULL)
  t.match(logic.error?.message ?? '', file)
  t.match(logic.error?.message ?? '', 'after 3 frames on disk')
  t.equal(attachRingControl(sab).stateName(), 'FAILED', 'the capture side stops filling the ring')
  t.equal(logic.drain(), 'failed', 'idempotent')
  const f = read(file)
  t.same(f.shape, [3, H, W])
  t.same(f.uid, [1, 2, 3])
  t.equal(f.frames_written, 3)
  t.match(f.error, ErrorCode.DISK_FULL)
  t.equal(h5dump(file).status, 0, 'h5dump reads it, data included')
})

t.test('a ring failed by the supervisor: the frames before it are written, the file closed with the error', async t => {
  const file = join(dir, 'failed.h5')
  const { w, logic, sab } = await setup(file)
  publish(w, 1, 1e6)
  publish(w, 2, 2e6)
  attachRingControl(sab).fail()
  t.equal(logic.drain(), 'failed')
  t.equal(logic.error?.code, ErrorCode.RING_FAILED)
  const f = read(file)
  t.same(f.uid, [1, 2])
  t.match(f.error, 'FAILED')
})
