/**
 * Variable-length record ring (the PandA ring): single producer, single consumer, records contiguous in memory.
 *
 * Producer: reserve(n) (or reserveOffset(n)) → fill → commit(n, tag, timestampNs). commit() publishes at once
 * (Atomics.store of the write index; Atomics.notify only when the consumer said it is about to sleep). For batches,
 * stage() several records and publish() once: one atomic store per batch instead of one per record.
 * Consumer: tryRead() (or the allocation-free next() cursor) → use the payload → release() (frees everything read).
 *
 * Atomics cost ~20-30 ns each on Node 20, so the hot paths avoid them: the producer re-reads the consumer index only
 * when its cached copy says "full" (or every 64 commits, for the high-water mark), the consumer re-reads the write
 * index only when its cached copy is exhausted, and reserve() checks the state word with a plain read.
 */
import { ErrorCode, FlyScanError } from '../errors.js'
import {
  DATA_OFFSET, F64, I32, REC_PAD, Rec, RingKind, RingState, recordBytes
} from './ring-layout.js'
import { RingHandle } from './ring.js'
import type { WaitResult } from './wait.js'

/** One record as the consumer sees it. The payload is a view into the ring: valid until release(). */
export interface RingRecord {
  readonly payload: Uint8Array
  readonly tag: number
  readonly seq: number
  readonly timestampNs: number
}

export class RecordWriter extends RingHandle {
  /** The data region: reserveOffset() returns offsets into it. */
  readonly data: Uint8Array
  readonly capacityBytes: number
  /** Largest payload a record can carry (capacityBytes/2 - 24). */
  readonly maxPayloadBytes: number
  readonly #i32d: Int32Array
  readonly #f64d: Float64Array
  readonly #mask: number
  #write: number
  #published: number
  #readCache: number
  #closed = false
  #seq: number
  #totalBytes: number
  #highWater: number
  #sinceRefresh = 0
  // the pending reservation
  #resStart = -1
  #resPayload = 0
  #resPad = 0

  constructor (buffer: SharedArrayBuffer) {
    super(buffer, 'producer', RingKind.RECORD)
    const cap = this.header[I32.CAPACITY] as number
    this.capacityBytes = cap
    this.maxPayloadBytes = this.header[I32.SLOT_BYTES] as number
    this.#mask = cap - 1
    this.data = new Uint8Array(buffer, DATA_OFFSET, cap)
    this.#i32d = new Int32Array(buffer, DATA_OFFSET, cap >> 2)
    this.#f64d = new Float64Array(buffer, DATA_OFFSET, cap >> 3)
    this.#write = Atomics.load(this.header, I32.WRITE) >>> 0
    this.#published = this.#write
    this.#readCache = Atomics.load(this.header, I32.READ) >>> 0
    this.#seq = this.headerF64[F64.TOTAL_RECORDS] as number
    this.#totalBytes = this.headerF64[F64.TOTAL_BYTES] as number
    this.#highWater = this.headerF64[F64.HIGH_WATER] as number
  }

  /**
   * Reserves room for one record of `payloadBytes` and returns the payload's byte offset in `data` (8-byte aligned),
   * or -1 when the ring has no room now. Throws RING_RECORD_TOO_LARGE if no ring state could ever hold it,
   * RING_STATE after close(), RING_FAILED once FAILED. Calling it again before commit() replaces the reservation.
   */
  reserveOffset (payloadBytes: number): number {
    if (!(payloadBytes >= 0 && payloadBytes <= this.maxPayloadBytes && (payloadBytes | 0) === payloadBytes)) {
      throw this.#tooLarge(payloadBytes)
    }
    // plain read: the state word changes rarely; the waits read it with Atomics
    if (this.#closed || this.header[I32.STATE] !== RingState.OPEN) throw this.stateError('reserve', this.#closedState())
    const need = recordBytes(payloadBytes)
    const pos = this.#write & this.#mask
    const tail = this.capacityBytes - pos
    const pad = need <= tail ? 0 : tail
    const total = pad + need
    if (((this.#write - this.#readCache) >>> 0) + total > this.capacityBytes) {
      this.#refresh()
      if (((this.#write - this.#readCache) >>> 0) + total > this.capacityBytes) {
        this.#resStart = -1
        return -1
      }
    }
    this.#resStart = pad === 0 ? pos : 0
    this.#resPayload = payloadBytes
    this.#resPad = pad
    return this.#resStart + Rec.PAYLOAD
  }

  /** reserveOffset() as a view the caller fills (`payloadBytes` long), or null when there is no room now. */
  reserve (payloadBytes: number): Uint8Array | null {
    const off = this.reserveOffset(payloadBytes)
    return off < 0 ? null : this.data.subarray(off, off + payloadBytes)
  }

  /**
   * Publishes the reserved record with `payloadBytes` (<= the reserved size) of payload, a caller tag (u32) and a
   * timestamp (ns): stage() + publish(). Returns the sequence number the ring assigned.
   */
  commit (payloadBytes: number, tag: number, timestampNs: number): number {
    const seq = this.stage(payloadBytes, tag, timestampNs)
    this.publish()
    return seq
  }

  /**
   * Frames the reserved record (like commit) without making it visible: call publish() after a batch. Records staged
   * and not yet published still take room; close() and the waits for space publish them.
   */
  stage (payloadBytes: number, tag: number, timestampNs: number): number {
    const start = this.#resStart
    if (start < 0) {
      throw new FlyScanError(ErrorCode.RING_STATE, `ring ${this.name}: commit() without a successful reserve()`,
        { details: { ring: this.name } })
    }
    if (!(payloadBytes >= 0 && payloadBytes <= this.#resPayload && (payloadBytes | 0) === payloadBytes)) {
      throw new FlyScanError(ErrorCode.RING_STATE,
        `ring ${this.name}: commit of ${payloadBytes} bytes exceeds the ${this.#resPayload} bytes reserved`,
        { details: { ring: this.name, payloadBytes, reservedBytes: this.#resPayload } })
    }
    this.#resStart = -1
    if (this.#resPad !== 0) this.#i32d[(this.#write & this.#mask) >> 2] = REC_PAD
    const seq = this.#seq
    this.#i32d[(start + Rec.LEN) >> 2] = payloadBytes
    this.#i32d[(start + Rec.TAG) >> 2] = tag
    this.#f64d[(start + Rec.SEQ) >> 3] = seq
    this.#f64d[(start + Rec.TIMESTAMP) >> 3] = timestampNs
    this.#write = (this.#write + this.#resPad + recordBytes(payloadBytes)) >>> 0
    this.#seq = seq + 1
    this.#totalBytes += payloadBytes
    if (++this.#sinceRefresh >= 64) this.#refresh()
    return seq
  }

  /** Makes every staged record visible to the consumer and wakes it if it is waiting. */
  publish (): void {
    if (this.#write === this.#published) return
    this.#published = this.#write
    const f = this.headerF64
    f[F64.TOTAL_RECORDS] = this.#seq
    f[F64.TOTAL_BYTES] = this.#totalBytes
    Atomics.store(this.header, I32.WRITE, this.#write | 0)
    if (Atomics.load(this.header, I32.DATA_WAITING) !== 0) {
      Atomics.add(this.header, I32.DATA_SIGNAL, 1)
      Atomics.notify(this.header, I32.DATA_SIGNAL)
    }
  }

  /** Copies `payload` in as one record. Returns false (nothing written) when there is no room now. */
  tryWrite (payload: Uint8Array, tag: number, timestampNs: number): boolean {
    const off = this.reserveOffset(payload.length)
    if (off < 0) return false
    this.data.set(payload, off)
    this.commit(payload.length, tag, timestampNs)
    return true
  }

  /** Bytes free now (re-reads the consumer index). A record of n payload bytes may need up to recordBytes(n)*2. */
  freeBytes (): number {
    this.#refresh()
    return this.capacityBytes - ((this.#write - this.#readCache) >>> 0)
  }

  /** Producer end-of-stream: OPEN → DRAINING (idempotent). The consumer drains what is left, then sees 'closed'. */
  close (): void {
    this.#resStart = -1
    this.publish()
    this.closeProducer()
    this.#closed = true
  }

  /** For waitForSpace: 'ready' when a record of `payloadBytes` fits now; null to keep waiting. */
  pollSpace (payloadBytes: number): WaitResult | null {
    this.publish()
    const s = this.state()
    if (s === RingState.FAILED) return 'failed'
    if (s !== RingState.OPEN) return 'closed'
    if (payloadBytes > this.maxPayloadBytes) throw this.#tooLarge(payloadBytes)
    const need = recordBytes(payloadBytes)
    const pos = this.#write & this.#mask
    const tail = this.capacityBytes - pos
    const total = need <= tail ? need : tail + need
    this.#refresh()
    return ((this.#write - this.#readCache) >>> 0) + total <= this.capacityBytes ? 'ready' : null
  }

  #refresh (): void {
    this.#sinceRefresh = 0
    this.#readCache = Atomics.load(this.header, I32.READ) >>> 0
    const used = (this.#write - this.#readCache) >>> 0
    if (used > this.#highWater) {
      this.#highWater = used
      this.headerF64[F64.HIGH_WATER] = used
    }
  }

  #closedState (): RingState {
    const s = this.state()
    return s === RingState.OPEN ? RingState.DRAINING : s
  }

  #tooLarge (payloadBytes: number): FlyScanError {
    return new FlyScanError(ErrorCode.RING_RECORD_TOO_LARGE,
      `ring ${this.name}: a record of ${payloadBytes} payload bytes can never fit: the largest record this ` +
      `${this.capacityBytes}-byte ring holds carries ${this.maxPayloadBytes} payload bytes`,
      { details: { ring: this.name, payloadBytes, maxPayloadBytes: this.maxPayloadBytes, capacityBytes: this.capacityBytes } })
  }
}

export class RecordReader extends RingHandle {
  readonly data: Uint8Array
  readonly capacityBytes: number
  // the cursor filled by next(): the record just read
  tag = 0
  seq = -1
  timestampNs = 0
  payloadOffset = 0
  payloadLength = 0
  readonly #i32d: Int32Array
  readonly #f64d: Float64Array
  readonly #mask: number
  #read: number
  #released: number
  #writeCache: number
  #readRecords: number
  #readBytes: number
  #pendingBytes = 0
  #pendingRecords = 0

  constructor (buffer: SharedArrayBuffer) {
    super(buffer, 'consumer', RingKind.RECORD)
    const cap = this.header[I32.CAPACITY] as number
    this.capacityBytes = cap
    this.#mask = cap - 1
    this.data = new Uint8Array(buffer, DATA_OFFSET, cap)
    this.#i32d = new Int32Array(buffer, DATA_OFFSET, cap >> 2)
    this.#f64d = new Float64Array(buffer, DATA_OFFSET, cap >> 3)
    this.#read = Atomics.load(this.header, I32.READ) >>> 0
    this.#released = this.#read
    this.#writeCache = Atomics.load(this.header, I32.WRITE) >>> 0
    this.#readRecords = this.headerF64[F64.READ_RECORDS] as number
    this.#readBytes = this.headerF64[F64.READ_BYTES] as number
  }

  /**
   * Allocation-free read: advances to the next record and fills tag, seq, timestampNs, payloadOffset and
   * payloadLength (payload bytes are data[payloadOffset, payloadOffset + payloadLength)). Returns false when no
   * record is available (empty, end-of-stream, or FAILED and drained: see state() or the wait functions).
   *
   * FAILED stops the producer, not the consumer: every record committed before the failure stays readable, so
   * that nothing already acquired is lost (a full PandA ring still gets its rows onto disk).
   */
  next (): boolean {
    if (this.#read === this.#writeCache) {
      this.#writeCache = Atomics.load(this.header, I32.WRITE) >>> 0
      if (this.#read === this.#writeCache) return false
    }
    let pos = this.#read & this.#mask
    let len = this.#i32d[pos >> 2] as number
    if (len === REC_PAD) {
      this.#read = (this.#read + this.capacityBytes - pos) >>> 0
      pos = 0
      len = this.#i32d[0] as number
    }
    this.tag = (this.#i32d[(pos + Rec.TAG) >> 2] as number) >>> 0
    this.seq = this.#f64d[(pos + Rec.SEQ) >> 3] as number
    this.timestampNs = this.#f64d[(pos + Rec.TIMESTAMP) >> 3] as number
    this.payloadOffset = pos + Rec.PAYLOAD
    this.payloadLength = len
    this.#read = (this.#read + recordBytes(len)) >>> 0
    this.#pendingBytes += len
    this.#pendingRecords++
    return true
  }

  /** The next record as an object whose payload views the ring (valid until release()), or null (see next()). */
  tryRead (): RingRecord | null {
    if (!this.next()) return null
    return {
      payload: this.data.subarray(this.payloadOffset, this.payloadOffset + this.payloadLength),
      tag: this.tag,
      seq: this.seq,
      timestampNs: this.timestampNs
    }
  }

  /** Frees every record read so far (their views become invalid) and wakes the producer if it waits for space. */
  release (): void {
    if (this.#read === this.#released) return
    this.#released = this.#read
    this.#readRecords += this.#pendingRecords
    this.#readBytes += this.#pendingBytes
    this.#pendingRecords = 0
    this.#pendingBytes = 0
    this.publishRead(this.#released, this.#readRecords, this.#readBytes)
  }

  /** Bytes committed and not yet read by this reader. */
  availableBytes (): number {
    this.#writeCache = Atomics.load(this.header, I32.WRITE) >>> 0
    return (this.#writeCache - this.#read) >>> 0
  }

  /**
   * For waitForData: 'ready' when a record can be read, 'failed' once FAILED and drained, 'closed' at end-of-stream (DRAINING
   * and drained: this marks the ring CLOSED), null to keep waiting.
   */
  pollData (): WaitResult | null {
    const s = this.state()
    this.#writeCache = Atomics.load(this.header, I32.WRITE) >>> 0
    return this.pollState(s, this.#read !== this.#writeCache)
  }
}

/** Producer handle on a record ring buffer (checks the layout: RING_LAYOUT on mismatch). */
export function attachRecordWriter (buffer: SharedArrayBuffer): RecordWriter {
  return new RecordWriter(buffer)
}

/** Consumer handle on a record ring buffer (checks the layout: RING_LAYOUT on mismatch). */
export function attachRecordReader (buffer: SharedArrayBuffer): RecordReader {
  return new RecordReader(buffer)
}
