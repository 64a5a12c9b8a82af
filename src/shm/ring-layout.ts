/**
 * The shared-memory layout of every tst-fly ring: the ONLY module that knows where a header word lives.
 *
 * A ring is one SharedArrayBuffer: a 384-byte header (six 64-byte cache lines) followed by the data region.
 * Offsets below are BYTE offsets; `I32.*` and `F64.*` are the same offsets as indices into an Int32Array /
 * Float64Array over the whole buffer. Every other file uses these names, never a number.
 *
 *   line 0  config    written once by createRecordRing/createSlotRing, read-only afterwards
 *   line 1  control   state + wait flags/signals: written rarely (state change, a side about to sleep)
 *   line 2  producer  written only by the producer (write index, drops, producer-side stats)
 *   line 3  consumer  written only by the consumer (read index, consumer-side stats)
 *   line 4-5 name     UTF-8 ring name (config, read-only)
 *
 * Indices are u32 counters that wrap mod 2^32; the record ring's capacity is a power of two (<= 2^30) and the slot
 * ring's slot count is a power of two, so `(write - read) >>> 0` is always the number of used bytes / slots.
 * Stats words (f64) are written with plain stores by their owning side only and are never used to synchronise.
 */

export const LAYOUT_MAGIC = 0x52_46_53_54 // 'TSFR' little-endian-ish: identifies a tst-fly ring buffer
/** Bump on ANY change to the offsets, framing or slot header below. Checked on attach (FlyScanError RING_LAYOUT). */
export const LAYOUT_VERSION = 1

export const CACHE_LINE_BYTES = 64
export const HEADER_BYTES = 6 * CACHE_LINE_BYTES
/** Byte offset of the data region in the buffer (cache-line aligned). */
export const DATA_OFFSET = HEADER_BYTES

/** Which 64-byte line of the header each group of words lives on (asserted by the layout test). */
export const Line = {
  CONFIG: 0,
  CONTROL: 1,
  PRODUCER: 2,
  CONSUMER: 3,
  NAME: 4
} as const

/** Header byte offsets. */
export const Off = {
  // line 0: config (immutable after creation)
  MAGIC: 0,
  VERSION: 4,
  KIND: 8,
  POLICY: 12,
  /** Record ring: data bytes (power of two). Slot ring: number of slots (power of two). */
  CAPACITY: 16,
  /** Slot ring: payload bytes per slot. Record ring: largest payload one record may carry. */
  SLOT_BYTES: 20,
  /** Slot ring: bytes from one slot's start to the next (slot header + payload, 64-aligned). Record ring: 0. */
  SLOT_STRIDE: 24,
  NAME_BYTES: 28,

  // line 1: control (state and wait handshakes; both sides write it, but rarely)
  STATE: 64,
  /** Who set FAILED (FailedBy). */
  FAILED_BY: 68,
  /** 1 while the consumer is (about to be) asleep waiting for data. */
  DATA_WAITING: 72,
  /** Futex word the consumer sleeps on; bumped by the producer after a commit when DATA_WAITING, and on every state change. */
  DATA_SIGNAL: 76,
  /** 1 while the producer is (about to be) asleep waiting for space. */
  SPACE_WAITING: 80,
  /** Futex word the producer sleeps on; bumped by the consumer after a release when SPACE_WAITING, and on every state change. */
  SPACE_SIGNAL: 84,

  // line 2: producer
  WRITE: 128,
  DROPPED: 132,
  /** f64: records committed (= next sequence number). */
  TOTAL_RECORDS: 136,
  /** f64: payload bytes committed. */
  TOTAL_BYTES: 144,
  /** f64: highest used bytes (record ring) or used slots (slot ring) seen by the producer. */
  HIGH_WATER: 152,

  // line 3: consumer
  READ: 192,
  /** f64: records released by the consumer. */
  READ_RECORDS: 200,
  /** f64: payload bytes released by the consumer. */
  READ_BYTES: 208,

  // lines 4-5: name
  NAME: 256
} as const

export type OffName = keyof typeof Off

/** Longest ring name in UTF-8 bytes (the two name lines). */
export const NAME_MAX_BYTES = 2 * CACHE_LINE_BYTES

/** Header words that are f64 (8-byte aligned); all others are i32. */
export const F64_WORDS: readonly OffName[] = ['TOTAL_RECORDS', 'TOTAL_BYTES', 'HIGH_WATER', 'READ_RECORDS', 'READ_BYTES']

/** Which line each header word must sit on. */
export const LINE_OF: Readonly<Record<OffName, number>> = {
  MAGIC: Line.CONFIG,
  VERSION: Line.CONFIG,
  KIND: Line.CONFIG,
  POLICY: Line.CONFIG,
  CAPACITY: Line.CONFIG,
  SLOT_BYTES: Line.CONFIG,
  SLOT_STRIDE: Line.CONFIG,
  NAME_BYTES: Line.CONFIG,
  STATE: Line.CONTROL,
  FAILED_BY: Line.CONTROL,
  DATA_WAITING: Line.CONTROL,
  DATA_SIGNAL: Line.CONTROL,
  SPACE_WAITING: Line.CONTROL,
  SPACE_SIGNAL: Line.CONTROL,
  WRITE: Line.PRODUCER,
  DROPPED: Line.PRODUCER,
  TOTAL_RECORDS: Line.PRODUCER,
  TOTAL_BYTES: Line.PRODUCER,
  HIGH_WATER: Line.PRODUCER,
  READ: Line.CONSUMER,
  READ_RECORDS: Line.CONSUMER,
  READ_BYTES: Line.CONSUMER,
  NAME: Line.NAME
}

/** Int32Array indices of the i32 header words. */
export const I32 = {
  MAGIC: Off.MAGIC >> 2,
  VERSION: Off.VERSION >> 2,
  KIND: Off.KIND >> 2,
  POLICY: Off.POLICY >> 2,
  CAPACITY: Off.CAPACITY >> 2,
  SLOT_BYTES: Off.SLOT_BYTES >> 2,
  SLOT_STRIDE: Off.SLOT_STRIDE >> 2,
  NAME_BYTES: Off.NAME_BYTES >> 2,
  STATE: Off.STATE >> 2,
  FAILED_BY: Off.FAILED_BY >> 2,
  DATA_WAITING: Off.DATA_WAITING >> 2,
  DATA_SIGNAL: Off.DATA_SIGNAL >> 2,
  SPACE_WAITING: Off.SPACE_WAITING >> 2,
  SPACE_SIGNAL: Off.SPACE_SIGNAL >> 2,
  WRITE: Off.WRITE >> 2,
  DROPPED: Off.DROPPED >> 2,
  READ: Off.READ >> 2
} as const

/** Float64Array indices of the f64 header words. */
export const F64 = {
  TOTAL_RECORDS: Off.TOTAL_RECORDS >> 3,
  TOTAL_BYTES: Off.TOTAL_BYTES >> 3,
  HIGH_WATER: Off.HIGH_WATER >> 3,
  READ_RECORDS: Off.READ_RECORDS >> 3,
  READ_BYTES: Off.READ_BYTES >> 3
} as const

/** The ring's lifecycle, stored in the STATE word. FAILED and CLOSED are terminal. */
export const RingState = {
  /** Producer writes, consumer reads. */
  OPEN: 0,
  /** Producer called close(): no more writes; the consumer drains what is left. */
  DRAINING: 1,
  /** The consumer drained a DRAINING ring to the end (end-of-stream seen). Terminal. */
  CLOSED: 2,
  /** Someone (producer, consumer or supervisor) called fail(). Terminal; waiters on both sides wake. */
  FAILED: 3
} as const
export type RingState = typeof RingState[keyof typeof RingState]
export const RING_STATE_NAMES: Readonly<Record<RingState, string>> = { 0: 'OPEN', 1: 'DRAINING', 2: 'CLOSED', 3: 'FAILED' }

/** Who marked the ring FAILED (FAILED_BY word). */
export const FailedBy = { NONE: 0, PRODUCER: 1, CONSUMER: 2, SUPERVISOR: 3 } as const
export type FailedBy = typeof FailedBy[keyof typeof FailedBy]

export const RingKind = { RECORD: 1, SLOT: 2 } as const
export type RingKind = typeof RingKind[keyof typeof RingKind]

/**
 * What a producer does when the ring is full. Declared per ring in its spec (and stored in the POLICY word):
 * - 'fail-when-full': the PandA ring. Never pause the socket, never drop: reserve() returns null, the producer calls
 *   fail() and raises PANDA_RING_FULL naming the sizes (see describe()). Size the ring for the worst case.
 * - 'drop-newest': the frame ring. tryAcquire() returns null and the drop is counted in DROPPED (reported by the scan).
 * - 'block': ordinary back-pressure: the producer waits for space (waitForSpace / waitForSpaceAsync). Nothing counted.
 */
export const RingPolicy = { FAIL_WHEN_FULL: 1, DROP_NEWEST: 2, BLOCK: 3 } as const
export type RingPolicyCode = typeof RingPolicy[keyof typeof RingPolicy]
export type RingPolicyName = 'fail-when-full' | 'drop-newest' | 'block'
export const POLICY_CODES: Readonly<Record<RingPolicyName, RingPolicyCode>> = {
  'fail-when-full': RingPolicy.FAIL_WHEN_FULL,
  'drop-newest': RingPolicy.DROP_NEWEST,
  block: RingPolicy.BLOCK
}
export const POLICY_NAMES: Readonly<Record<RingPolicyCode, RingPolicyName>> = {
  1: 'fail-when-full',
  2: 'drop-newest',
  3: 'block'
}

// ---- record ring framing (offsets relative to the record start in the data region) ----

/**
 * Every record: [len i32][tag u32][seq f64][timestampNs f64][payload, padded to 8]. Records are contiguous; when the
 * next record does not fit before the end of the data region, the producer writes REC_PAD in the len word and the
 * record starts at offset 0. Record starts are 8-byte aligned, so payloads are too (Float64Array views are allowed).
 */
export const Rec = {
  LEN: 0,
  TAG: 4,
  SEQ: 8,
  TIMESTAMP: 16,
  PAYLOAD: 24
} as const
export const RECORD_HEADER_BYTES = Rec.PAYLOAD
export const RECORD_ALIGN = 8
/** len word value marking "skip to the start of the data region". */
export const REC_PAD = -1
/** Smallest and largest record-ring data region. The largest record is half the capacity (so it fits at any start). */
export const MIN_RECORD_CAPACITY = 64
export const MAX_RECORD_CAPACITY = 2 ** 30

/** Bytes a record with `payloadBytes` of payload occupies in the data region (header + payload padded to 8). */
export function recordBytes (payloadBytes: number): number {
  return RECORD_HEADER_BYTES + ((payloadBytes + RECORD_ALIGN - 1) & ~(RECORD_ALIGN - 1))
}

/** Largest payload a record ring of `capacityBytes` can carry: a record of capacity/2 fits whatever its start. */
export function maxRecordPayload (capacityBytes: number): number {
  return capacityBytes / 2 - RECORD_HEADER_BYTES
}

// ---- slot ring framing (offsets relative to the slot start) ----

/** Caller metadata words per slot (u32), e.g. uniqueId, width, height, dtype. */
export const SLOT_META_WORDS = 8
/** Slot header: [len i32][pad i32][seq f64][timestampNs f64][pad 8][meta u32 x 8] = 64 bytes, then the payload. */
export const Slot = {
  LEN: 0,
  SEQ: 8,
  TIMESTAMP: 16,
  META: 32,
  PAYLOAD: 64
} as const
export const SLOT_HEADER_BYTES = Slot.PAYLOAD
export const MAX_SLOTS = 2 ** 16

/** Bytes from one slot to the next: slot header + payload rounded up to a cache line. */
export function slotStride (slotBytes: number): number {
  return SLOT_HEADER_BYTES + Math.ceil(slotBytes / CACHE_LINE_BYTES) * CACHE_LINE_BYTES
}

export function isPowerOfTwo (n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0
}
