/**
 * CameraCaptureLogic with hand-made monitor updates and a real slot ring, no thread and no Channel Access: stale
 * updates, pairing by EPICS timestamp in both orders, the unpaired fallback, UniqueId gaps, a size change, and
 * drops on a full ring.
 */
import t from 'tap'
import { ErrorCode, FlyScanError } from '../../src/errors.js'
import { HistogramSet } from '../../src/metrics/index.js'
import { CameraCaptureLogic, FrameMeta, type FrameUpdate } from '../../src/pipeline/index.js'
import { attachSlotReader, attachSlotWriter, createSlotRing, type SlotReader } from '../../src/shm/index.js'

const W = 4
const H = 3
const PV = 'CAM:image1:ArrayData'

/** A frame update of `bytes` bytes whose pixels are all `fill`, stamped (sec, nsec). */
function frame (sec: number, nsec: number, fill: number, bytes = W * H): FrameUpdate {
  return {
    valueBytes: bytes,
    count: bytes,
    epicsSec: sec,
    epicsNsec: nsec,
    copyTo: (dest) => { dest.fill(fill, 0, bytes) }
  }
}

interface Rig {
  logic: CameraCaptureLogic
  reader: SlotReader
  hist: HistogramSet
  readyCalls: number
  clock: { ns: number }
  /** Every frame in the ring now: [uniqueId, first pixel, sec, nsec]. */
  drain: () => Array<[number, number, number, number]>
}

function rig (slots = 8, dtype: 'UInt8' | 'UInt16' = 'UInt8'): Rig {
  const bytes = W * H * (dtype === 'UInt8' ? 1 : 2)
  const sab = createSlotRing({ name: 'cam→writer', policy: 'drop-newest', slots, slotBytes: bytes })
  const hist = new HistogramSet()
  const clock = { ns: 1e9 }
  const r: Rig = {
    logic: undefined as unknown as CameraCaptureLogic,
    reader: attachSlotReader(sab),
    hist,
    readyCalls: 0,
    clock,
    drain: () => {
      const out: Array<[number, number, number, number]> = []
      for (let f = r.reader.tryRead(); f !== null; f = r.reader.tryRead()) {
        out.push([f.meta[FrameMeta.UNIQUE_ID] as number, f.payload[0] as number, f.meta[FrameMeta.EPICS_SEC] as number, f.meta[FrameMeta.EPICS_NSEC] as number])
      }
      r.reader.release()
      return out
    }
  }
  r.logic = new CameraCaptureLogic({
    ring: attachSlotWriter(sab),
    shape: { width: W, height: H, dtype },
    arrayDataPv: PV,
    uniqueIdPv: 'CAM:image1:UniqueId_RBV',
    histograms: hist,
    pairTimeoutMs: 50,
    uniqueIdHistory: 4,
    nowNs: () => clock.ns,
    events: { ready: () => { r.readyCalls++ } }
  })
  return r
}

/** Both monitors' initial (stale) updates: UniqueId_RBV holds `id` at subscription. */
function subscribe (r: Rig, id = 0): void {
  r.logic.onArrayData(frame(1, 0, 99), r.clock.ns)
  r.logic.onUniqueId(id, 1, 0)
}

t.test('the first update of each monitor is stale: discarded, counted; ready once both came', async t => {
  const r = rig()
  r.logic.onArrayData(frame(1, 0, 99), 0)
  t.equal(r.readyCalls, 0)
  t.notOk(r.logic.ready)
  r.logic.onUniqueId(7, 1, 0)
  t.equal(r.readyCalls, 1)
  t.ok(r.logic.ready)
  t.same(r.drain(), [], 'nothing published')
  t.same(r.logic.counters(), { received: 0, dropped: 0, stale: 2, unpaired: 0, uniqueIdGaps: 0, firstUniqueId: undefined, lastUniqueId: undefined })
})

t.test('UniqueId before its frame: paired by timestamp, published at once', async t => {
  const r = rig()
  subscribe(r)
  r.logic.onUniqueId(1, 10, 500)
  r.logic.onUniqueId(2, 10, 600)
  r.logic.onArrayData(frame(10, 500, 11), r.clock.ns)
  r.logic.onArrayData(frame(10, 600, 12), r.clock.ns)
  t.same(r.drain(), [[1, 11, 10, 500], [2, 12, 10, 600]])
  t.equal(r.logic.counters().unpaired, 0)
  t.equal(r.logic.counters().received, 2)
})

t.test('frame before its UniqueId: it waits in its slot and is published when the UniqueId comes', async t => {
  const r = rig()
  subscribe(r)
  r.clock.ns = 2e9
  r.logic.onArrayData(frame(10, 500, 11), 2e9)
  t.ok(r.logic.hasPending)
  t.same(r.drain(), [], 'not published before its UniqueId')
  r.clock.ns = 2e9 + 3e6
  r.logic.onUniqueId(41, 10, 500)
  t.notOk(r.logic.hasPending)
  const out: number[] = []
  for (let f = r.reader.tryRead(); f !== null; f = r.reader.tryRead()) {
    out.push(f.meta[FrameMeta.UNIQUE_ID] as number, f.timestampNs, f.meta[FrameMeta.PUBLISH_DELAY_NS] as number)
  }
  t.same(out, [41, 2e9, 3e6], 'slot timestamp = arrival; publish delay = the wait')
  t.equal(r.hist.summary('camera.monitor_to_ring_us')?.max, 3000)
})

t.test('no UniqueId of that timestamp: lastUniqueId + 1 after the bound, or when the next frame comes', async t => {
  const r = rig()
  subscribe(r, 100)
  r.logic.onArrayData(frame(10, 1, 11), r.clock.ns)
  r.logic.poll(r.clock.ns + 49e6)
  t.ok(r.logic.hasPending, 'still waiting before the bound')
  r.logic.poll(r.clock.ns + 50e6)
  t.same(r.drain().map((f) => f[0]), [101], 'the stale UniqueId_RBV value + 1')
  r.logic.onArrayData(frame(10, 2, 12), r.clock.ns)
  r.logic.onArrayData(frame(10, 3, 13), r.clock.ns)
  t.same(r.drain().map((f) => f[0]), [102], 'the previous frame goes (unpaired) when the next one arrives')
  r.logic.onUniqueId(103, 10, 3)
  t.same(r.drain().map((f) => f[0]), [103], 'the last one paired')
  t.equal(r.logic.counters().unpaired, 2)
  t.equal(r.logic.counters().uniqueIdGaps, 0)
})

t.test('UniqueId gaps: the sum of (jump - 1); first and last ids', async t => {
  const r = rig()
  subscribe(r)
  for (const [id, ns] of [[5, 1], [6, 2], [9, 3], [10, 4], [14, 5]] as const) {
    r.logic.onUniqueId(id, 20, ns)
    r.logic.onArrayData(frame(20, ns, id), r.clock.ns)
  }
  t.same(r.drain().map((f) => f[0]), [5, 6, 9, 10, 14])
  const c = r.logic.counters()
  t.equal(c.uniqueIdGaps, 2 + 3)
  t.equal(c.firstUniqueId, 5)
  t.equal(c.lastUniqueId, 14)
})

t.test('a UniqueId history entry pairs once; older ones are forgotten', async t => {
  const r = rig()
  subscribe(r)
  r.logic.onUniqueId(1, 30, 1)
  r.logic.onUniqueId(2, 30, 2)
  r.logic.onArrayData(frame(30, 2, 2), r.clock.ns)
  r.logic.onArrayData(frame(30, 1, 1), r.clock.ns) // arrives late: its UniqueId was older than the one used
  r.logic.finish()
  t.same(r.drain().map((f) => f[0]), [2, 3], 'the late frame takes lastUniqueId + 1 at finish')
})

t.test('a frame of another size ends the capture with an error naming the PV and both sizes', async t => {
  const r = rig()
  subscribe(r)
  r.logic.onUniqueId(1, 40, 1)
  r.logic.onArrayData(frame(40, 1, 1), r.clock.ns)
  const err = t.throws(() => { r.logic.onArrayData(frame(40, 2, 2, W * H * 2), r.clock.ns) }) as unknown
  t.ok(err instanceof FlyScanError)
  t.equal((err as FlyScanError).code, ErrorCode.DETECTOR)
  t.match((err as FlyScanError).message, PV)
  t.match((err as FlyScanError).message, `${W * H * 2} bytes`)
  t.match((err as FlyScanError).message, `${W} x ${H} UInt8`)
  t.match((err as FlyScanError).message, `${W * H} bytes`)
  r.logic.fail()
  t.same(r.drain().map((f) => f[0]), [1], 'frames before it stay in the ring')
  t.equal(r.reader.stateName(), 'DRAINING', 'the producer closed the ring: the writer drains it and finishes the file')
})

t.test('a full ring drops the newest frames and counts them; the monitor is never held up', async t => {
  const r = rig(2)
  subscribe(r)
  for (let i = 1; i <= 5; i++) {
    r.logic.onUniqueId(i, 50, i)
    r.logic.onArrayData(frame(50, i, i), r.clock.ns)
  }
  const c = r.logic.counters()
  t.equal(c.received, 5)
  t.equal(c.dropped, 3)
  t.same(r.drain().map((f) => f[0]), [1, 2], 'the first two frames kept')
  r.logic.onUniqueId(6, 50, 6)
  r.logic.onArrayData(frame(50, 6, 6), r.clock.ns)
  t.same(r.drain().map((f) => [f[0], f[1]]), [[6, 6]], 'space again once the writer released')
  t.equal(r.logic.counters().uniqueIdGaps, 3, 'dropped frames show as a UniqueId gap in the file')
})

t.test('a 16-bit camera needs 2 bytes per pixel; refuses shapes it cannot write', async t => {
  const r = rig(4, 'UInt16')
  subscribe(r)
  r.logic.onUniqueId(1, 60, 1)
  r.logic.onArrayData(frame(60, 1, 3, W * H * 2), r.clock.ns)
  t.same(r.drain().map((f) => f[0]), [1])
  const sab = createSlotRing({ name: 'x', policy: 'drop-newest', slots: 2, slotBytes: 8 })
  t.throws(() => new CameraCaptureLogic({
    ring: attachSlotWriter(sab),
    shape: { width: W, height: H, dtype: 'UInt8' },
    arrayDataPv: PV,
    uniqueIdPv: 'u',
    histograms: r.hist,
    pairTimeoutMs: 1,
    uniqueIdHistory: 1,
    events: { ready: () => {} }
  }), { code: ErrorCode.BAD_INPUT }, 'frames larger than the slots')
})
