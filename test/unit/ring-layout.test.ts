import t from 'tap'
import {
  CACHE_LINE_BYTES, DATA_OFFSET, F64, F64_WORDS, HEADER_BYTES, I32, LINE_OF, Line, NAME_MAX_BYTES, Off, Rec,
  RECORD_HEADER_BYTES, RingState, SLOT_HEADER_BYTES, SLOT_META_WORDS, Slot, recordBytes, maxRecordPayload, slotStride
} from '../../src/shm/ring-layout.js'
import type { OffName } from '../../src/shm/ring-layout.js'
import { ErrorCode } from '../../src/errors.js'
import {
  attachRecordReader, attachRecordWriter, attachRingControl, attachSlotReader, createRecordRing, createSlotRing
} from '../../src/shm/index.js'

const names = Object.keys(Off) as OffName[]
const sizeOf = (n: OffName): number => n === 'NAME' ? NAME_MAX_BYTES : F64_WORDS.includes(n) ? 8 : 4

t.test('header offsets are unique, aligned, on their declared line, inside the header, and do not overlap', async (t) => {
  const offsets = names.map((n) => Off[n])
  t.equal(new Set(offsets).size, offsets.length, 'unique offsets')
  t.equal(HEADER_BYTES % CACHE_LINE_BYTES, 0)
  t.equal(DATA_OFFSET % CACHE_LINE_BYTES, 0, 'data region starts on a cache line')
  const ranges: Array<[number, number, string]> = []
  for (const n of names) {
    const off = Off[n]
    const size = sizeOf(n)
    t.equal(off % size === 0 || n === 'NAME', true, `${n} aligned to its size`)
    t.equal(off % 4, 0, `${n} 4-byte aligned`)
    if (F64_WORDS.includes(n)) t.equal(off % 8, 0, `${n} 8-byte aligned (f64)`)
    t.ok(off + size <= HEADER_BYTES, `${n} fits in the header`)
    t.equal(Math.floor(off / CACHE_LINE_BYTES), LINE_OF[n], `${n} on line ${LINE_OF[n]}`)
    if (n !== 'NAME') t.equal(Math.floor((off + size - 1) / CACHE_LINE_BYTES), LINE_OF[n], `${n} does not straddle lines`)
    ranges.push([off, off + size, n])
  }
  ranges.sort((a, b) => a[0] - b[0])
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1] as [number, number, string]
    const cur = ranges[i] as [number, number, string]
    t.ok(prev[1] <= cur[0], `${prev[2]} and ${cur[2]} do not overlap`)
  }
})

t.test('producer and consumer words sit on separate 64-byte lines', async (t) => {
  t.not(Line.PRODUCER, Line.CONSUMER)
  for (const n of ['WRITE', 'DROPPED', 'TOTAL_RECORDS', 'TOTAL_BYTES', 'HIGH_WATER'] as const) t.equal(LINE_OF[n], Line.PRODUCER, n)
  for (const n of ['READ', 'READ_RECORDS', 'READ_BYTES'] as const) t.equal(LINE_OF[n], Line.CONSUMER, n)
  for (const n of ['STATE', 'DATA_WAITING', 'DATA_SIGNAL', 'SPACE_WAITING', 'SPACE_SIGNAL'] as const) t.equal(LINE_OF[n], Line.CONTROL, n)
})

t.test('index tables agree with the byte offsets', async (t) => {
  for (const [k, v] of Object.entries(I32)) t.equal(v * 4, Off[k as OffName], `I32.${k}`)
  for (const [k, v] of Object.entries(F64)) t.equal(v * 8, Off[k as OffName], `F64.${k}`)
  t.equal(Object.keys(I32).length + Object.keys(F64).length, names.length - 1, 'every word but NAME has an index')
})

t.test('record and slot framing', async (t) => {
  t.equal(RECORD_HEADER_BYTES % 8, 0)
  t.equal(Rec.SEQ % 8, 0)
  t.equal(Rec.TIMESTAMP % 8, 0)
  t.equal(Rec.PAYLOAD % 8, 0)
  t.equal(recordBytes(0), 24)
  t.equal(recordBytes(1), 32)
  t.equal(recordBytes(8), 32)
  t.equal(recordBytes(9), 40)
  t.equal(maxRecordPayload(256), 104)
  t.equal(Slot.META + SLOT_META_WORDS * 4 <= Slot.PAYLOAD, true, 'meta words fit the slot header')
  t.equal(Slot.SEQ % 8, 0)
  t.equal(Slot.TIMESTAMP % 8, 0)
  t.equal(SLOT_HEADER_BYTES % CACHE_LINE_BYTES, 0)
  t.equal(slotStride(1), 128)
  t.equal(slotStride(64), 128)
  t.equal(slotStride(65), 192)
})

t.test('attach checks magic, version and kind (RING_LAYOUT)', async (t) => {
  const sab = createRecordRing({ name: 'layout', policy: 'fail-when-full', capacityBytes: 256 })
  t.doesNotThrow(() => attachRecordWriter(sab))
  const h = new Int32Array(sab, 0, HEADER_BYTES >> 2)
  h[I32.VERSION] = (h[I32.VERSION] as number) + 1
  t.throws(() => attachRecordReader(sab), { code: ErrorCode.RING_LAYOUT, message: /version 2.*expects.*version 1/ })
  t.throws(() => attachRingControl(sab), { code: ErrorCode.RING_LAYOUT })
  h[I32.VERSION] = (h[I32.VERSION] as number) - 1
  h[I32.MAGIC] = 0
  t.throws(() => attachRecordWriter(sab), { code: ErrorCode.RING_LAYOUT })
  const slots = createSlotRing({ name: 'frames', policy: 'drop-newest', slots: 2, slotBytes: 16 })
  t.throws(() => attachRecordReader(slots), { code: ErrorCode.RING_LAYOUT, message: /slot ring, attached as a record ring/ })
  t.throws(() => attachSlotReader(createRecordRing({ name: 'r', policy: 'block', capacityBytes: 64 })), { code: ErrorCode.RING_LAYOUT })
  t.throws(() => attachRecordReader(new SharedArrayBuffer(16)), { code: ErrorCode.RING_LAYOUT })
  t.equal(attachRingControl(slots).stats().kind, 'slot')
  t.equal(attachRingControl(slots).stateName(), 'OPEN')
  t.equal(RingState.OPEN, 0)
})

t.test('create validates its spec', async (t) => {
  t.throws(() => createRecordRing({ name: 'x', policy: 'block', capacityBytes: 1000 }), { code: ErrorCode.BAD_INPUT, message: /power of two/ })
  t.throws(() => createRecordRing({ name: 'x', policy: 'block', capacityBytes: 32 }), { code: ErrorCode.BAD_INPUT })
  t.throws(() => createRecordRing({ name: '', policy: 'block', capacityBytes: 64 }), { code: ErrorCode.BAD_INPUT })
  t.throws(() => createRecordRing({ name: 'x'.repeat(200), policy: 'block', capacityBytes: 64 }), { code: ErrorCode.BAD_INPUT })
  // @ts-expect-error an unknown policy is rejected at run time too
  t.throws(() => createRecordRing({ name: 'x', policy: 'pause', capacityBytes: 64 }), { code: ErrorCode.BAD_INPUT, message: /unknown policy/ })
  t.throws(() => createSlotRing({ name: 'x', policy: 'block', slots: 3, slotBytes: 8 }), { code: ErrorCode.BAD_INPUT })
  t.throws(() => createSlotRing({ name: 'x', policy: 'block', slots: 4, slotBytes: 0 }), { code: ErrorCode.BAD_INPUT })
  const w = attachRecordWriter(createRecordRing({ name: 'panda→writer', policy: 'fail-when-full', capacityBytes: 1024 }))
  t.equal(w.name, 'panda→writer', 'UTF-8 name round-trips')
  t.equal(w.policy, 'fail-when-full')
})
