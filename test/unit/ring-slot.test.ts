import t from 'tap'
import { ErrorCode } from '../../src/errors.js'
import {
  SLOT_META_WORDS, attachRingControl, attachSlotReader, attachSlotWriter, createSlotRing, waitForData, waitForDataAsync,
  waitForSpace, waitForSpaceAsync
} from '../../src/shm/index.js'

function ring (policy: 'drop-newest' | 'block' = 'drop-newest', slots = 4, slotBytes = 100): { sab: SharedArrayBuffer } {
  return { sab: createSlotRing({ name: 'manta1→writer', policy, slots, slotBytes }) }
}

t.test('slot ring basics: acquire, publish with meta, read, release', async (t) => {
  const { sab } = ring()
  const w = attachSlotWriter(sab)
  const r = attachSlotReader(sab)
  t.equal(w.slots, 4)
  t.equal(w.slotBytes, 100)
  t.equal(r.tryRead(), null)
  const v = w.tryAcquire(50)
  t.ok(v)
  if (v === null) return
  t.equal(v.length, 100, 'the whole slot is offered')
  t.equal(v.byteOffset % 64, 0, 'payload is cache-line aligned')
  t.equal(w.tryAcquire(), v, 'acquire before publish returns the same slot')
  v.fill(7, 0, 50)
  t.equal(w.publish(50, 1e9, [42, 728, 544, 1]), 0)
  const f = r.tryRead()
  t.ok(f)
  t.equal(f?.payload.length, 50)
  t.ok(f?.payload.every((b) => b === 7))
  t.equal(f?.seq, 0)
  t.equal(f?.timestampNs, 1e9)
  t.same([...(f?.meta ?? [])], [42, 728, 544, 1, 0, 0, 0, 0])
  t.equal(f?.meta.length, SLOT_META_WORDS)
  t.equal(r.availableSlots(), 0)
  r.release()
  const s = r.stats()
  t.equal(s.kind, 'slot')
  t.equal(s.totalRecords, 1)
  t.equal(s.totalBytes, 50)
  t.equal(s.readBytes, 50)
  t.equal(s.usedSlots, 0)
  t.equal(s.highWaterSlots, 1)
  t.equal(s.capacityBytes, 400)
  t.throws(() => w.publish(1, 0), { code: ErrorCode.RING_STATE, message: /without a successful tryAcquire/ })
  t.throws(() => w.tryAcquire(101), { code: ErrorCode.RING_RECORD_TOO_LARGE, message: /101 bytes.*4 slots holds 100 bytes/ })
  w.tryAcquire()
  t.throws(() => w.publish(101, 0), { code: ErrorCode.RING_RECORD_TOO_LARGE })
  t.throws(() => w.publish(1, 0, new Array(SLOT_META_WORDS + 1).fill(0)), { code: ErrorCode.BAD_INPUT })
})

t.test('drop-newest: a full ring drops and counts exactly', async (t) => {
  const { sab } = ring('drop-newest', 4)
  const w = attachSlotWriter(sab)
  const r = attachSlotReader(sab)
  let published = 0
  let nulls = 0
  for (let i = 0; i < 10; i++) {
    const v = w.tryAcquire(4)
    if (v === null) { nulls++; continue }
    v[0] = i
    w.publish(1, i, [i])
    published++
  }
  t.equal(published, 4)
  t.equal(nulls, 6)
  t.equal(w.dropped, 6)
  t.equal(r.stats().dropped, 6, 'the DROPPED word holds the count')
  t.equal(r.stats().highWaterSlots, 4)
  // the kept frames are the oldest four (drop newest)
  const got: number[] = []
  for (let f = r.tryRead(); f !== null; f = r.tryRead()) got.push(f.meta[0] as number)
  t.same(got, [0, 1, 2, 3])
  r.release()
  t.ok(w.tryAcquire(), 'room again')
  t.equal(w.dropped, 6, 'a successful acquire counts nothing')
  t.equal(attachRingControl(sab).stats().dropped, 6)
})

t.test('block policy: a full ring counts no drop; the producer can wait for space', async (t) => {
  const { sab } = ring('block', 2)
  const w = attachSlotWriter(sab)
  const r = attachSlotReader(sab)
  w.tryAcquire(); w.publish(1, 0)
  w.tryAcquire(); w.publish(1, 0)
  t.equal(w.tryAcquire(), null)
  t.equal(w.dropped, 0)
  t.equal(waitForSpace(w, 10), 'timeout')
  const p = waitForSpaceAsync(w, 10_000)
  setTimeout(() => { r.tryRead(); r.release() }, 10)
  t.equal(await p, 'ready')
})

t.test('slot ring states and waits', async (t) => {
  const { sab } = ring()
  const w = attachSlotWriter(sab)
  const r = attachSlotReader(sab)
  t.equal(waitForData(r, 10), 'timeout')
  const p = waitForDataAsync(r, 10_000)
  setTimeout(() => { w.tryAcquire(); w.publish(3, 5) }, 10)
  t.equal(await p, 'ready')
  w.close()
  t.throws(() => w.tryAcquire(), { code: ErrorCode.RING_STATE, message: /DRAINING/ })
  t.equal(r.tryRead()?.timestampNs, 5)
  r.release()
  t.equal(waitForData(r, 10), 'closed')
  t.equal(r.stateName(), 'CLOSED')

  const b = ring()
  const w2 = attachSlotWriter(b.sab)
  const r2 = attachSlotReader(b.sab)
  w2.tryAcquire(); w2.publish(1, 0)
  attachRingControl(b.sab).fail()
  t.equal(waitForData(r2, 10), 'ready', 'a frame published before the failure is still there')
  t.equal(r2.tryRead()?.payload.length, 1, 'FAILED stops the producer; what it published stays readable')
  r2.release()
  t.equal(r2.tryRead(), null, 'then nothing more')
  t.equal(waitForData(r2, 10), 'failed')
  t.throws(() => w2.tryAcquire(), { code: ErrorCode.RING_FAILED, message: /supervisor/ })
})
