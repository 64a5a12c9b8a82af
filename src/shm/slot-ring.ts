/**
 * Fixed-slot ring (camera frames): N slots of S payload bytes, each with a 64-byte slot header (length, seq,
 * timestampNs, SLOT_META_WORDS u32 metadata words). Producer: tryAcquire() → fill → publish(). Consumer:
 * tryRead() → use → release(). A full ring under the 'drop-newest' policy counts the drop in DROPPED.
 */
import { ErrorCode, FlyScanError } from '../errors.js'
import {
  DATA_OFFSET, F64, I32, RingKind, RingPolicy, RingState, SLOT_META_WORDS, Slot
} from './ring-layout.js'
import { RingHandle } from './ring.js'
import type { WaitResult } from './wait.js'

/** One frame as the consumer sees it. payload and meta view the slot: valid until release(). */
export interface SlotFrame {
  readonly payload: Uint8Array
  readonly seq: number
  readonly timestampNs: number
  /** SLOT_META_WORDS u32 words the producer passed to publish() (e.g. uniqueId, width, height, dtype). */
  readonly meta: Uint32Array
}

interface SlotViews {
  readonly payload: Uint8Array
  readonly meta: Uint32Array
  readonly i32: Int32Array
  readonly f64: Float64Array
}

function slotViews (buffer: SharedArrayBuffer, slots: number, stride: number, slotBytes: number): SlotViews[] {
  const out: SlotViews[] = []
  for (let i = 0; i < slots; i++) {
    const base = DATA_OFFSET + i * stride
    out.push({
      payload: new Uint8Array(buffer, base + Slot.PAYLOAD, slotBytes),
      meta: new Uint32Array(buffer, base + Slot.META, SLOT_META_WORDS),
      i32: new Int32Array(buffer, base, Slot.PAYLOAD >> 2),
      f64: new Float64Array(buffer, base, Slot.PAYLOAD >> 3)
    })
  }
  return out
}

export class SlotWriter extends RingHandle {
  readonly slots: number
  readonly slotBytes: number
  readonly #views: SlotViews[]
  readonly #mask: number
  readonly #countDrops: boolean
  #write: number
  #readCache: number
  #seq: number
  #totalBytes: number
  #highWater: number
  #dropped: number
  #acquired = false

  constructor (buffer: SharedArrayBuffer) {
    super(buffer, 'producer', RingKind.SLOT)
    this.slots = this.header[I32.CAPACITY] as number
    this.slotBytes = this.header[I32.SLOT_BYTES] as number
    this.#mask = this.slots - 1
    this.#views = slotViews(buffer, this.slots, this.header[I32.SLOT_STRIDE] as number, this.slotBytes)
    this.#countDrops = this.header[I32.POLICY] === RingPolicy.DROP_NEWEST
    this.#write = Atomics.load(this.header, I32.WRITE) >>> 0
    this.#readCache = Atomics.load(this.header, I32.READ) >>> 0
    this.#seq = this.headerF64[F64.TOTAL_RECORDS] as number
    this.#totalBytes = this.headerF64[F64.TOTAL_BYTES] as number
    this.#highWater = this.headerF64[F64.HIGH_WATER] as number
    this.#dropped = Atomics.load(this.header, I32.DROPPED) >>> 0
  }

  /**
   * The next free slot's payload view (slotBytes long; fill up to `bytes`), or null when every slot is in use. Under
   * 'drop-newest' a null counts one drop. `bytes` > slotBytes throws RING_RECORD_TOO_LARGE; RING_STATE after close(),
   * RING_FAILED once FAILED. Calling it again before publish() returns the same slot and counts nothing.
   */
  tryAcquire (bytes = 0): Uint8Array | null {
    if (bytes > this.slotBytes) throw this.#tooLarge(bytes)
    const s = Atomics.load(this.header, I32.STATE)
    if (s !== RingState.OPEN) throw this.stateError('acquire', s as RingState)
    if (!this.#acquired && ((this.#write - this.#readCache) >>> 0) >= this.slots) {
      this.#readCache = Atomics.load(this.header, I32.READ) >>> 0
      if (((this.#write - this.#readCache) >>> 0) >= this.slots) {
        if (this.#countDrops) Atomics.store(this.header, I32.DROPPED, ++this.#dropped)
        return null
      }
    }
    this.#acquired = true
    return (this.#views[this.#write & this.#mask] as SlotViews).payload
  }

  /**
   * Publishes the acquired slot: `bytes` of payload, a timestamp (ns) and up to SLOT_META_WORDS metadata words
   * (missing words are 0). Returns the frame's sequence number. Wakes the consumer if it is waiting.
   */
  publish (bytes: number, timestampNs: number, meta?: ArrayLike<number>): number {
    if (!this.#acquired) {
      throw new FlyScanError(ErrorCode.RING_STATE, `ring ${this.name}: publish() without a successful tryAcquire()`,
        { details: { ring: this.name } })
    }
    if (!(bytes >= 0 && bytes <= this.slotBytes)) throw this.#tooLarge(bytes)
    if (meta !== undefined && meta.length > SLOT_META_WORDS) {
      throw new FlyScanError(ErrorCode.BAD_INPUT,
        `ring ${this.name}: ${meta.length} metadata words given, a slot holds ${SLOT_META_WORDS}`,
        { details: { ring: this.name, metaWords: meta.length, max: SLOT_META_WORDS } })
    }
    const v = this.#views[this.#write & this.#mask] as SlotViews
    const seq = this.#seq
    v.i32[Slot.LEN >> 2] = bytes
    v.f64[Slot.SEQ >> 3] = seq
    v.f64[Slot.TIMESTAMP >> 3] = timestampNs
    for (let i = 0; i < SLOT_META_WORDS; i++) v.meta[i] = meta === undefined ? 0 : (meta[i] ?? 0)
    this.#acquired = false
    this.#write = (this.#write + 1) >>> 0
    Atomics.store(this.header, I32.WRITE, this.#write | 0)
    if (Atomics.load(this.header, I32.DATA_WAITING) !== 0) {
      Atomics.add(this.header, I32.DATA_SIGNAL, 1)
      Atomics.notify(this.header, I32.DATA_SIGNAL)
    }
    this.#seq = seq + 1
    this.#totalBytes += bytes
    const f = this.headerF64
    f[F64.TOTAL_RECORDS] = this.#seq
    f[F64.TOTAL_BYTES] = this.#totalBytes
    this.#readCache = Atomics.load(this.header, I32.READ) >>> 0
    const used = (this.#write - this.#readCache) >>> 0
    if (used > this.#highWater) {
      this.#highWater = used
      f[F64.HIGH_WATER] = used
    }
    return seq
  }

  /** Frames dropped so far (drop-newest policy). */
  get dropped (): number {
    return this.#dropped
  }

  /** Producer end-of-stream: OPEN → DRAINING (idempotent). */
  close (): void {
    this.#acquired = false
    this.closeProducer()
  }

  /** For waitForSpace: 'ready' when a slot is free now; null to keep waiting. */
  pollSpace (): WaitResult | null {
    const s = this.state()
    if (s === RingState.FAILED) return 'failed'
    if (s !== RingState.OPEN) return 'closed'
    if (this.#acquired) return 'ready'
    this.#readCache = Atomics.load(this.header, I32.READ) >>> 0
    return ((this.#write - this.#readCache) >>> 0) < this.slots ? 'ready' : null
  }

  #tooLarge (bytes: number): FlyScanError {
    return new FlyScanError(ErrorCode.RING_RECORD_TOO_LARGE,
      `ring ${this.name}: a frame of ${bytes} bytes can never fit: each of its ${this.slots} slots holds ${this.slotBytes} bytes`,
      { details: { ring: this.name, bytes, slotBytes: this.slotBytes, slots: this.slots } })
  }
}

export class SlotReader extends RingHandle {
  readonly slots: number
  readonly slotBytes: number
  readonly #views: SlotViews[]
  readonly #mask: number
  #read: number
  #released: number
  #writeCache: number
  #readRecords: number
  #readBytes: number
  #pendingBytes = 0
  #pendingRecords = 0

  constructor (buffer: SharedArrayBuffer) {
    super(buffer, 'consumer', RingKind.SLOT)
    this.slots = this.header[I32.CAPACITY] as number
    this.slotBytes = this.header[I32.SLOT_BYTES] as number
    this.#mask = this.slots - 1
    this.#views = slotViews(buffer, this.slots, this.header[I32.SLOT_STRIDE] as number, this.slotBytes)
    this.#read = Atomics.load(this.header, I32.READ) >>> 0
    this.#released = this.#read
    this.#writeCache = Atomics.load(this.header, I32.WRITE) >>> 0
    this.#readRecords = this.headerF64[F64.READ_RECORDS] as number
    this.#readBytes = this.headerF64[F64.READ_BYTES] as number
  }

  /**
   * The next published frame (views valid until release()), or null: empty, end-of-stream, or FAILED and drained
   * (frames published before a failure stay readable, as in the record ring).
   */
  tryRead (): SlotFrame | null {
    if (this.#read === this.#writeCache) {
      this.#writeCache = Atomics.load(this.header, I32.WRITE) >>> 0
      if (this.#read === this.#writeCache) return null
    }
    const v = this.#views[this.#read & this.#mask] as SlotViews
    const len = v.i32[Slot.LEN >> 2] as number
    this.#read = (this.#read + 1) >>> 0
    this.#pendingRecords++
    this.#pendingBytes += len
    return {
      payload: v.payload.subarray(0, len),
      seq: v.f64[Slot.SEQ >> 3] as number,
      timestampNs: v.f64[Slot.TIMESTAMP >> 3] as number,
      meta: v.meta
    }
  }

  /** Frees every frame read so far and wakes the producer if it waits for space. */
  release (): void {
    if (this.#read === this.#released) return
    this.#released = this.#read
    this.#readRecords += this.#pendingRecords
    this.#readBytes += this.#pendingBytes
    this.#pendingRecords = 0
    this.#pendingBytes = 0
    this.publishRead(this.#released, this.#readRecords, this.#readBytes)
  }

  /** Frames published and not yet read by this reader. */
  availableSlots (): number {
    this.#writeCache = Atomics.load(this.header, I32.WRITE) >>> 0
    return (this.#writeCache - this.#read) >>> 0
  }

  /** For waitForData: see RecordReader.pollData. */
  pollData (): WaitResult | null {
    const s = this.state()
    this.#writeCache = Atomics.load(this.header, I32.WRITE) >>> 0
    return this.pollState(s, this.#read !== this.#writeCache)
  }
}

/** Producer handle on a slot ring buffer (checks the layout: RING_LAYOUT on mismatch). */
export function attachSlotWriter (buffer: SharedArrayBuffer): SlotWriter {
  return new SlotWriter(buffer)
}

/** Consumer handle on a slot ring buffer (checks the layout: RING_LAYOUT on mismatch). */
export function attachSlotReader (buffer: SharedArrayBuffer): SlotReader {
  return new SlotReader(buffer)
}
