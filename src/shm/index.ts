/**
 * Public entry of src/shm: SharedArrayBuffer SPSC rings (docs/rings.md).
 *
 * Record ring (PandA, policy 'fail-when-full'):
 *   const sab = createRecordRing({ name: 'panda→writer', policy: 'fail-when-full', capacityBytes: 64 * 2 ** 20 })
 *   producer: const w = attachRecordWriter(sab); const view = w.reserve(n); ...; w.commit(n, tag, nowNs()); w.close()
 *   consumer: const r = attachRecordReader(sab); waitForData(r, ms); let rec; while ((rec = r.tryRead())) {...}; r.release()
 * Slot ring (camera frames, policy 'drop-newest'):
 *   const sab = createSlotRing({ name: 'manta1→writer', policy: 'drop-newest', slots: 8, slotBytes: 728 * 544 * 2 })
 *   producer: const s = attachSlotWriter(sab); const v = s.tryAcquire(bytes); if (v) { v.set(...); s.publish(bytes, ts, meta) }
 *   consumer: const f = attachSlotReader(sab).tryRead(); ...; release()
 * Supervisor: attachRingControl(sab).fail() / .stats().
 */
export {
  createRecordRing, createSlotRing, attachRingControl, RingControl, RingHandle,
  type RecordRingSpec, type SlotRingSpec, type RingStats, type RingStateName, type RingSide
} from './ring.js'
export { RecordWriter, RecordReader, attachRecordWriter, attachRecordReader, type RingRecord } from './record-ring.js'
export { SlotWriter, SlotReader, attachSlotWriter, attachSlotReader, type SlotFrame } from './slot-ring.js'
export {
  waitForData, waitForDataAsync, waitForSpace, waitForSpaceAsync,
  type WaitResult, type WaitOptions, type DataWaitable, type SpaceWaitable
} from './wait.js'
export {
  RingState, RingKind, RingPolicy, FailedBy, LAYOUT_VERSION, HEADER_BYTES, RECORD_HEADER_BYTES, SLOT_HEADER_BYTES,
  SLOT_META_WORDS, MIN_RECORD_CAPACITY, MAX_RECORD_CAPACITY, MAX_SLOTS, recordBytes, maxRecordPayload, slotStride,
  type RingPolicyName
} from './ring-layout.js'
