import t from 'tap'
import { ErrorCode } from '../../src/errors.js'
import { HEADER_BYTES, I32, REC_PAD } from '../../src/shm/ring-layout.js'
import {
  attachRecordReader, attachRecordWriter, attachRingControl, createRecordRing, maxRecordPayload, recordBytes,
  waitForData, waitForDataAsync, waitForSpace, waitForSpaceAsync
} from '../../src/shm/index.js'
import type { RecordReader, RecordWriter } from '../../src/shm/index.js'

const CAP = 256
const MAX = maxRecordPayload(CAP) // 104

function ring (capacityBytes = CAP, policy: 'fail-when-full' | 'block' = 'fail-when-full'): { w: RecordWriter, r: RecordReader, sab: SharedArrayBuffer } {
  const sab = createRecordRing({ name: 'test', policy, capacityBytes })
  return { w: attachRecordWriter(sab), r: attachRecordReader(sab), sab }
}

function fill (view: Uint8Array, seed: number): void {
  for (let i = 0; i < view.length; i++) view[i] = (seed * 31 + i * 7) & 0xff
}
function check (view: Uint8Array, seed: number): boolean {
  for (let i = 0; i < view.length; i++) if (view[i] !== ((seed * 31 + i * 7) & 0xff)) return false
  return true
}

/** Moves the write (and read) position of an empty ring from 0 to `target` with filler records, draining them. */
function advanceTo (w: RecordWriter, r: RecordReader, target: number): void {
  let d = target
  while (d > 0) {
    const rec = d <= 24 + MAX ? d : (d - 128 >= 24 ? 128 : d - 24)
    if (!w.tryWrite(new Uint8Array(rec - 24), 999, 0)) throw new Error('filler did not fit')
    d -= rec
    if (r.tryRead() === null) throw new Error('filler not readable')
    r.release()
  }
}

t.test('write/read one record: payload, tag, seq, timestamp, 8-byte aligned payload', async (t) => {
  const { w, r } = ring()
  const v = w.reserve(13)
  t.ok(v)
  if (v === null) return
  t.equal(v.length, 13)
  fill(v, 1)
  t.equal(w.commit(13, 0xfffffffe, 1234.5), 0, 'first seq is 0')
  t.ok(w.tryWrite(new Uint8Array([1, 2, 3]), 7, 99))
  const a = r.tryRead()
  t.ok(a)
  t.equal(a?.tag, 0xfffffffe, 'tag is u32')
  t.equal(a?.seq, 0)
  t.equal(a?.timestampNs, 1234.5)
  t.equal(a?.payload.length, 13)
  t.ok(a !== null && check(a.payload, 1))
  t.equal((a?.payload.byteOffset ?? 1) % 8, 0, 'payload 8-byte aligned in the buffer')
  const b = r.tryRead()
  t.same(b === null ? null : [...b.payload], [1, 2, 3])
  t.equal(b?.seq, 1)
  t.equal(r.tryRead(), null, 'empty')
  r.release()
  const s = w.stats()
  t.equal(s.totalRecords, 2)
  t.equal(s.totalBytes, 16)
  t.equal(s.readRecords, 2)
  t.equal(s.readBytes, 16)
  t.equal(s.usedBytes, 0)
  t.equal(s.recordsInFlight, 0)
})

t.test('wrap-around at every reachable start position and every payload size', async (t) => {
  // A record never straddles the end: record starts are 0 or >= 24 (the smallest record), so every start position
  // s in {0, 24, 32, ..., CAP-8} with every payload 0..MAX puts the end-of-region boundary at every byte of the record.
  let cases = 0
  let wraps = 0
  let bad = 0
  for (let s = 0; s < CAP; s += 8) {
    if (s > 0 && s < 24) continue
    for (let n = 0; n <= MAX; n++) {
      const { w, r, sab } = ring()
      advanceTo(w, r, s)
      const off = w.reserveOffset(n)
      if (off < 0) { bad++; continue }
      const wrapped = s + recordBytes(n) > CAP
      if (wrapped) wraps++
      if ((off % 8) !== 0 || off + n > CAP || (wrapped ? off !== 24 : off !== s + 24)) bad++
      fill(w.data.subarray(off, off + n), n + s)
      w.commit(n, n, s)
      if (wrapped) {
        const d = new Int32Array(sab, HEADER_BYTES, CAP >> 2)
        if (d[s >> 2] !== REC_PAD) bad++
      }
      const rec = r.tryRead()
      if (rec === null || rec.tag !== n || rec.timestampNs !== s || rec.payload.length !== n || !check(rec.payload, n + s)) bad++
      r.release()
      // one more record after it, to check the position after a wrap is right
      if (!w.tryWrite(new Uint8Array([n & 0xff]), 77, 0)) bad++
      const next = r.tryRead()
      if (next === null || next.tag !== 77 || next.payload[0] !== (n & 0xff)) bad++
      if (r.tryRead() !== null) bad++
      r.release()
      if (w.stats().usedBytes !== 0) bad++
      cases++
    }
  }
  t.equal(bad, 0, `${cases} cases, ${wraps} of them wrapped, none wrong`)
  t.ok(wraps > 100, 'many cases wrapped')
})

t.test('u32 indices wrap mod 2^32', async (t) => {
  const sab = createRecordRing({ name: 'u32', policy: 'block', capacityBytes: 1024 })
  const h = new Int32Array(sab, 0, HEADER_BYTES >> 2)
  const start = (2 ** 32 - 600) | 0
  h[I32.WRITE] = start
  h[I32.READ] = start
  const w = attachRecordWriter(sab)
  const r = attachRecordReader(sab)
  let expectSeq = 0
  let writeSeq = 0
  for (let round = 0; round < 200; round++) {
    for (let k = 0; k < 5; k++) {
      const n = (round * 5 + k) % 90
      const v = w.reserve(n)
      if (v === null) break
      fill(v, writeSeq)
      w.commit(n, 1, writeSeq)
      writeSeq++
    }
    for (;;) {
      const rec = r.tryRead()
      if (rec === null) break
      t.equal(rec.seq, expectSeq)
      if (!check(rec.payload, expectSeq)) t.fail(`payload of seq ${expectSeq}`)
      expectSeq++
    }
    r.release()
  }
  t.equal(expectSeq, writeSeq)
  t.ok((Atomics.load(h, I32.WRITE) >>> 0) < 2 ** 31, 'the write index wrapped past 2^32')
})

t.test('records too large for the ring throw RING_RECORD_TOO_LARGE naming both sizes', async (t) => {
  const { w } = ring()
  t.ok(w.reserve(MAX), 'the largest payload fits')
  t.throws(() => w.reserve(MAX + 1), { code: ErrorCode.RING_RECORD_TOO_LARGE, message: new RegExp(`${MAX + 1} payload bytes.*256-byte ring.*${MAX} payload bytes`) })
  t.throws(() => w.tryWrite(new Uint8Array(1000), 0, 0), { code: ErrorCode.RING_RECORD_TOO_LARGE })
  t.throws(() => w.reserveOffset(-1), { code: ErrorCode.RING_RECORD_TOO_LARGE })
  t.throws(() => waitForSpace(w, 10, MAX + 1), { code: ErrorCode.RING_RECORD_TOO_LARGE })
})

t.test('commit misuse throws RING_STATE', async (t) => {
  const { w } = ring()
  t.throws(() => w.commit(0, 0, 0), { code: ErrorCode.RING_STATE, message: /without a successful reserve/ })
  w.reserve(8)
  t.throws(() => w.commit(9, 0, 0), { code: ErrorCode.RING_STATE, message: /9 bytes exceeds the 8 bytes reserved/ })
  w.commit(4, 0, 0)
  t.throws(() => w.commit(4, 0, 0), { code: ErrorCode.RING_STATE }, 'a reservation commits once')
})

t.test('a full ring: reserve returns null, describe() names the sizes, high-water mark, waitForSpace', async (t) => {
  const { w, r } = ring(1024)
  let n = 0
  while (w.tryWrite(new Uint8Array(40), 1, n)) n++
  t.equal(n, 1024 / recordBytes(40) | 0, 'filled to capacity')
  t.equal(w.reserve(40), null, 'reserve returns null when full')
  const d = w.describe()
  t.equal(d.name, 'test')
  t.equal(d.capacityBytes, 1024)
  t.equal(d.usedBytes, n * recordBytes(40))
  t.equal(d.recordsInFlight, n)
  t.equal(d.highWaterBytes, n * recordBytes(40))
  t.equal(d.policy, 'fail-when-full')
  t.equal(waitForSpace(w, 20, 40), 'timeout', 'sync wait for space times out')
  const t0 = performance.now()
  t.equal(await waitForSpaceAsync(w, 30, 40), 'timeout')
  t.ok(performance.now() - t0 >= 25, 'async wait lasted about its bound')
  const later = waitForSpaceAsync(w, 5000, 40)
  setTimeout(() => { r.tryRead(); r.release() }, 20)
  t.equal(await later, 'ready', 'release wakes the waiting producer')
  t.ok(w.reserve(40))
  t.equal(w.stats().highWaterBytes, n * recordBytes(40), 'high water stays at the max')
  t.equal(waitForSpace(w, 10, 0), 'ready')
  t.throws(() => waitForSpace(w, Number.POSITIVE_INFINITY), { code: ErrorCode.BAD_INPUT }, 'waits are bounded')
})

t.test('states: close → DRAINING → drain → CLOSED; illegal operations', async (t) => {
  const { w, r } = ring()
  t.equal(w.stateName(), 'OPEN')
  w.tryWrite(new Uint8Array(8), 1, 0)
  w.tryWrite(new Uint8Array(8), 2, 0)
  w.close()
  t.equal(r.stateName(), 'DRAINING')
  t.doesNotThrow(() => w.close(), 'close is idempotent')
  t.throws(() => w.reserve(8), { code: ErrorCode.RING_STATE, message: /cannot reserve in state DRAINING/ })
  t.throws(() => w.tryWrite(new Uint8Array(1), 0, 0), { code: ErrorCode.RING_STATE })
  t.equal(waitForSpace(w, 10), 'closed', 'a closed ring takes no writes')
  t.equal(waitForData(r, 10), 'ready', 'records left to drain')
  t.equal(r.tryRead()?.tag, 1)
  t.equal(r.tryRead()?.tag, 2)
  r.release()
  t.equal(r.stateName(), 'DRAINING', 'not closed until the consumer sees the end')
  t.equal(waitForData(r, 10), 'closed', 'end-of-stream')
  t.equal(r.stateName(), 'CLOSED')
  t.equal(await waitForDataAsync(r, 10), 'closed')
  t.equal(r.fail(), false, 'a CLOSED ring cannot fail')
  t.throws(() => w.reserve(1), { code: ErrorCode.RING_STATE, message: /CLOSED/ })
})

t.test('states: fail from either side or the supervisor is terminal and wakes waiters', async (t) => {
  {
    const { w, r } = ring()
    w.tryWrite(new Uint8Array(8), 1, 0)
    t.equal(r.fail(), true)
    t.equal(r.fail(), false, 'fail is idempotent')
    t.equal(w.stateName(), 'FAILED')
    t.equal(w.failedBy(), 'consumer')
    t.throws(() => w.reserve(1), { code: ErrorCode.RING_FAILED, message: /marked FAILED by the consumer/ })
    t.throws(() => w.close(), { code: ErrorCode.RING_FAILED })
    t.equal(waitForData(r, 10), 'ready', 'a record committed before the failure is still there')
    t.equal(r.tryRead()?.tag, 1, 'FAILED stops the producer; what it committed stays readable')
    r.release()
    t.equal(r.tryRead(), null, 'then no more records')
    t.equal(waitForData(r, 10), 'failed')
    t.equal(waitForSpace(w, 10), 'failed')
  }
  {
    const { w, r } = ring()
    w.close()
    t.equal(w.fail(), true, 'DRAINING → FAILED')
    t.equal(r.failedBy(), 'producer')
  }
  {
    const { r, sab } = ring()
    const waiting = waitForDataAsync(r, 10_000)
    const t0 = performance.now()
    setTimeout(() => { attachRingControl(sab).fail() }, 20)
    t.equal(await waiting, 'failed', 'a waiting consumer wakes when the supervisor fails the ring')
    t.ok(performance.now() - t0 < 5000)
    t.equal(r.failedBy(), 'supervisor')
  }
  {
    const { w, r } = ring(64)
    w.tryWrite(new Uint8Array(8), 1, 0)
    w.tryWrite(new Uint8Array(8), 2, 0)
    t.equal(w.reserve(8), null, 'full')
    const waiting = waitForSpaceAsync(w, 10_000, 8)
    setTimeout(() => { r.fail() }, 20)
    t.equal(await waiting, 'failed', 'a producer waiting for space wakes on fail')
  }
})

t.test('async wait for data wakes on commit and on close', async (t) => {
  const { w, r } = ring()
  t.equal(await waitForDataAsync(r, 20), 'timeout')
  const p = waitForDataAsync(r, 10_000)
  setTimeout(() => w.tryWrite(new Uint8Array(4), 5, 0), 10)
  t.equal(await p, 'ready')
  t.equal(r.tryRead()?.tag, 5)
  r.release()
  const q = waitForDataAsync(r, 10_000)
  setTimeout(() => w.close(), 10)
  t.equal(await q, 'closed')
})

t.test('next() cursor reads without allocating and release frees a batch', async (t) => {
  const { w, r } = ring(1024)
  for (let i = 0; i < 5; i++) {
    const off = w.reserveOffset(8)
    new Float64Array(w.data.buffer, w.data.byteOffset + off, 1)[0] = i * 1.5
    w.commit(8, i, i)
  }
  const seen: number[] = []
  while (r.next()) {
    seen.push(new Float64Array(r.data.buffer, r.data.byteOffset + r.payloadOffset, 1)[0] as number)
    t.equal(r.payloadLength, 8)
  }
  t.same(seen, [0, 1.5, 3, 4.5, 6])
  t.equal(w.stats().usedBytes, 5 * 32, 'not freed before release')
  r.release()
  t.equal(w.stats().usedBytes, 0)
  t.equal(r.availableBytes(), 0)
  t.equal(w.freeBytes(), 1024)
})
