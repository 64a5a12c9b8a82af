/**
 * What both ring kinds share: creation of the buffer, attaching with the layout check, the lifecycle state word,
 * stats, and the supervisor-side RingControl (a third party that may mark a ring FAILED and read its stats).
 */
import { ErrorCode, FlyScanError } from '../errors.js'
import {
  DATA_OFFSET, F64, FailedBy, HEADER_BYTES, I32, LAYOUT_MAGIC, LAYOUT_VERSION, MAX_RECORD_CAPACITY, MAX_SLOTS,
  MIN_RECORD_CAPACITY, NAME_MAX_BYTES, Off, POLICY_CODES, POLICY_NAMES, RING_STATE_NAMES, RingKind, RingState,
  isPowerOfTwo, maxRecordPayload, slotStride
} from './ring-layout.js'
import type { RingPolicyCode, RingPolicyName } from './ring-layout.js'
import type { WaitResult } from './wait.js'

export type RingStateName = 'OPEN' | 'DRAINING' | 'CLOSED' | 'FAILED'
export type RingSide = 'producer' | 'consumer' | 'supervisor'

/** A variable-length record ring (the PandA ring). */
export interface RecordRingSpec {
  readonly name: string
  readonly policy: RingPolicyName
  /** Data region bytes: a power of two in [64, 2^30]. The largest record payload is capacityBytes/2 - 24. */
  readonly capacityBytes: number
}

/** A fixed-slot ring (camera frames). */
export interface SlotRingSpec {
  readonly name: string
  readonly policy: RingPolicyName
  /** Number of slots: a power of two in [1, 65536]. */
  readonly slots: number
  /** Largest payload of one slot (e.g. one 8 MB frame). */
  readonly slotBytes: number
}

/** A snapshot of a ring's counters, for Stats messages and for error messages (e.g. PANDA_RING_FULL). */
export interface RingStats {
  readonly name: string
  readonly kind: 'record' | 'slot'
  readonly policy: RingPolicyName
  readonly state: RingStateName
  readonly failedBy: RingSide | null
  /** Record ring: data region bytes. Slot ring: slots * slotBytes. */
  readonly capacityBytes: number
  /** Record ring: bytes committed and not yet released (framing included). Slot ring: usedSlots * slotBytes. */
  readonly usedBytes: number
  /** Highest usedBytes the producer saw (sampled when it re-reads the consumer index; exact for slot rings). */
  readonly highWaterBytes: number
  /** Slot ring: slot count, used slots, highest used slots. Record ring: 0. */
  readonly slots: number
  readonly usedSlots: number
  readonly highWaterSlots: number
  /** Records (or frames) committed and not yet released. */
  readonly recordsInFlight: number
  /** Totals committed by the producer (records = next sequence number; bytes = payload bytes). */
  readonly totalRecords: number
  readonly totalBytes: number
  /** Totals released by the consumer. */
  readonly readRecords: number
  readonly readBytes: number
  /** Frames dropped under the 'drop-newest' policy. */
  readonly dropped: number
}

function checkName (name: string): Uint8Array {
  const bytes = new TextEncoder().encode(name)
  if (name.length === 0 || bytes.length > NAME_MAX_BYTES) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `ring name must be 1..${NAME_MAX_BYTES} UTF-8 bytes, got ${bytes.length}`, {
      details: { name, bytes: bytes.length, max: NAME_MAX_BYTES }
    })
  }
  return bytes
}

function checkPolicy (name: string, policy: string): RingPolicyCode {
  const code = (POLICY_CODES as Readonly<Record<string, RingPolicyCode>>)[policy]
  if (code === undefined) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `ring ${name}: unknown policy '${policy}' (fail-when-full, drop-newest or block)`, {
      details: { name, policy }
    })
  }
  return code
}

function initHeader (sab: SharedArrayBuffer, kind: RingKind, name: Uint8Array, policy: RingPolicyCode,
  capacity: number, slotBytes: number, stride: number): void {
  const i32 = new Int32Array(sab, 0, HEADER_BYTES >> 2)
  i32[I32.MAGIC] = LAYOUT_MAGIC
  i32[I32.VERSION] = LAYOUT_VERSION
  i32[I32.KIND] = kind
  i32[I32.POLICY] = policy
  i32[I32.CAPACITY] = capacity
  i32[I32.SLOT_BYTES] = slotBytes
  i32[I32.SLOT_STRIDE] = stride
  i32[I32.NAME_BYTES] = name.length
  new Uint8Array(sab, Off.NAME, name.length).set(name)
  Atomics.store(i32, I32.STATE, RingState.OPEN)
}

/** Allocates and initialises a record ring. Pass the buffer to the producer and consumer threads (workerData). */
export function createRecordRing (spec: RecordRingSpec): SharedArrayBuffer {
  const name = checkName(spec.name)
  const policy = checkPolicy(spec.name, spec.policy)
  const cap = spec.capacityBytes
  if (!isPowerOfTwo(cap) || cap < MIN_RECORD_CAPACITY || cap > MAX_RECORD_CAPACITY) {
    throw new FlyScanError(ErrorCode.BAD_INPUT,
      `ring ${spec.name}: capacityBytes must be a power of two in [${MIN_RECORD_CAPACITY}, ${MAX_RECORD_CAPACITY}], got ${cap}`,
      { details: { name: spec.name, capacityBytes: cap } })
  }
  const sab = new SharedArrayBuffer(DATA_OFFSET + cap)
  initHeader(sab, RingKind.RECORD, name, policy, cap, maxRecordPayload(cap), 0)
  return sab
}

/** Allocates and initialises a slot ring (slots * stride bytes of data; stride = 64-byte slot header + payload). */
export function createSlotRing (spec: SlotRingSpec): SharedArrayBuffer {
  const name = checkName(spec.name)
  const policy = checkPolicy(spec.name, spec.policy)
  if (!isPowerOfTwo(spec.slots) || spec.slots > MAX_SLOTS) {
    throw new FlyScanError(ErrorCode.BAD_INPUT,
      `ring ${spec.name}: slots must be a power of two in [1, ${MAX_SLOTS}], got ${spec.slots}`,
      { details: { name: spec.name, slots: spec.slots } })
  }
  if (!Number.isInteger(spec.slotBytes) || spec.slotBytes < 1 || spec.slotBytes > 2 ** 30) {
    throw new FlyScanError(ErrorCode.BAD_INPUT,
      `ring ${spec.name}: slotBytes must be an integer in [1, ${2 ** 30}], got ${spec.slotBytes}`,
      { details: { name: spec.name, slotBytes: spec.slotBytes } })
  }
  const stride = slotStride(spec.slotBytes)
  const sab = new SharedArrayBuffer(DATA_OFFSET + spec.slots * stride)
  initHeader(sab, RingKind.SLOT, name, policy, spec.slots, spec.slotBytes, stride)
  return sab
}

function kindName (kind: number): string {
  return kind === RingKind.RECORD ? 'record' : kind === RingKind.SLOT ? 'slot' : `unknown(${kind})`
}

const FAILED_BY_CODE: Readonly<Record<RingSide, FailedBy>> = {
  producer: FailedBy.PRODUCER,
  consumer: FailedBy.CONSUMER,
  supervisor: FailedBy.SUPERVISOR
}
const FAILED_BY_SIDE: readonly (RingSide | null)[] = [null, 'producer', 'consumer', 'supervisor']

/**
 * One side's handle on a ring buffer. Subclasses add the producer/consumer operations. Not exported from the folder:
 * the public handles are RecordWriter/RecordReader/SlotWriter/SlotReader/RingControl.
 */
export class RingHandle {
  readonly buffer: SharedArrayBuffer
  readonly name: string
  readonly side: RingSide
  readonly policy: RingPolicyName
  /** Int32 view of the header (wait.ts sleeps on its signal words). */
  readonly header: Int32Array
  protected readonly headerF64: Float64Array
  protected readonly kind: RingKind

  constructor (buffer: SharedArrayBuffer, side: RingSide, expectedKind: RingKind | null) {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < HEADER_BYTES) {
      throw new FlyScanError(ErrorCode.RING_LAYOUT,
        `not a ring buffer: expected a SharedArrayBuffer of at least ${HEADER_BYTES} bytes`,
        { details: { byteLength: buffer instanceof SharedArrayBuffer ? buffer.byteLength : -1, headerBytes: HEADER_BYTES } })
    }
    const i32 = new Int32Array(buffer, 0, HEADER_BYTES >> 2)
    const magic = i32[I32.MAGIC] as number
    const version = i32[I32.VERSION] as number
    const kind = i32[I32.KIND] as number
    if (magic !== LAYOUT_MAGIC || version !== LAYOUT_VERSION) {
      throw new FlyScanError(ErrorCode.RING_LAYOUT,
        `ring layout mismatch: buffer has magic 0x${(magic >>> 0).toString(16)} version ${version}, this build expects ` +
        `magic 0x${LAYOUT_MAGIC.toString(16)} version ${LAYOUT_VERSION}`,
        { details: { magic, version, expectedMagic: LAYOUT_MAGIC, expectedVersion: LAYOUT_VERSION } })
    }
    if (kind !== RingKind.RECORD && kind !== RingKind.SLOT) {
      throw new FlyScanError(ErrorCode.RING_LAYOUT, `ring layout mismatch: unknown ring kind ${kind}`, { details: { kind } })
    }
    if (expectedKind !== null && kind !== expectedKind) {
      throw new FlyScanError(ErrorCode.RING_LAYOUT,
        `ring kind mismatch: buffer holds a ${kindName(kind)} ring, attached as a ${kindName(expectedKind)} ring`,
        { details: { kind: kindName(kind), expected: kindName(expectedKind) } })
    }
    this.buffer = buffer
    this.header = i32
    this.headerF64 = new Float64Array(buffer, 0, HEADER_BYTES >> 3)
    this.kind = kind
    this.side = side
    const nameBytes = i32[I32.NAME_BYTES] as number
    this.name = new TextDecoder().decode(new Uint8Array(buffer, Off.NAME, nameBytes).slice())
    this.policy = POLICY_NAMES[i32[I32.POLICY] as RingPolicyCode] ?? 'block'
  }

  /** The current state word (RingState). */
  state (): RingState {
    return Atomics.load(this.header, I32.STATE) as RingState
  }

  stateName (): RingStateName {
    return RING_STATE_NAMES[this.state()] as RingStateName
  }

  /**
   * Marks the ring FAILED (terminal) and wakes every waiter on both sides. Allowed from any side and any state but
   * CLOSED (a fully drained ring has nothing left to fail). Returns true if this call made the transition.
   */
  fail (): boolean {
    for (;;) {
      const s = this.state()
      if (s === RingState.FAILED || s === RingState.CLOSED) return false
      if (Atomics.compareExchange(this.header, I32.STATE, s, RingState.FAILED) === s) {
        Atomics.store(this.header, I32.FAILED_BY, FAILED_BY_CODE[this.side])
        this.wakeAll()
        return true
      }
    }
  }

  /** Who set FAILED, or null. */
  failedBy (): RingSide | null {
    return FAILED_BY_SIDE[Atomics.load(this.header, I32.FAILED_BY)] ?? null
  }

  /** Counters for Stats messages and error messages. */
  stats (): RingStats {
    const h = this.header
    const f = this.headerF64
    const write = Atomics.load(h, I32.WRITE)
    const read = Atomics.load(h, I32.READ)
    const used = (write - read) >>> 0
    const totalRecords = f[F64.TOTAL_RECORDS] as number
    const readRecords = f[F64.READ_RECORDS] as number
    const slot = this.kind === RingKind.SLOT
    const cap = h[I32.CAPACITY] as number
    const slotBytes = h[I32.SLOT_BYTES] as number
    const hw = f[F64.HIGH_WATER] as number
    return {
      name: this.name,
      kind: slot ? 'slot' : 'record',
      policy: this.policy,
      state: this.stateName(),
      failedBy: this.failedBy(),
      capacityBytes: slot ? cap * slotBytes : cap,
      usedBytes: slot ? used * slotBytes : used,
      highWaterBytes: slot ? hw * slotBytes : hw,
      slots: slot ? cap : 0,
      usedSlots: slot ? used : 0,
      highWaterSlots: slot ? hw : 0,
      recordsInFlight: Math.max(0, totalRecords - readRecords),
      totalRecords,
      totalBytes: f[F64.TOTAL_BYTES] as number,
      readRecords,
      readBytes: f[F64.READ_BYTES] as number,
      dropped: Atomics.load(h, I32.DROPPED) >>> 0
    }
  }

  /** Same as stats(): name, capacityBytes, usedBytes, recordsInFlight... for messages such as "ring X full: ...". */
  describe (): RingStats {
    return this.stats()
  }

  /** Wakes both sides: bumps both futex words so a waiter that already read them does not go to sleep. */
  protected wakeAll (): void {
    Atomics.add(this.header, I32.DATA_SIGNAL, 1)
    Atomics.notify(this.header, I32.DATA_SIGNAL)
    Atomics.add(this.header, I32.SPACE_SIGNAL, 1)
    Atomics.notify(this.header, I32.SPACE_SIGNAL)
  }

  /** Producer: OPEN → DRAINING. Idempotent on DRAINING/CLOSED; on FAILED throws RING_FAILED. */
  protected closeProducer (): void {
    for (;;) {
      const s = this.state()
      if (s === RingState.DRAINING || s === RingState.CLOSED) return
      if (s === RingState.FAILED) throw this.failedError('close')
      if (Atomics.compareExchange(this.header, I32.STATE, s, RingState.DRAINING) === s) {
        this.wakeAll()
        return
      }
    }
  }

  /** Consumer: DRAINING and empty → CLOSED (end-of-stream). */
  /**
   * Consumer: publishes how far it has read (the read index and the totals) and wakes the producer if it is
   * waiting for space.
   */
  protected publishRead (read: number, readRecords: number, readBytes: number): void {
    const f = this.headerF64
    f[F64.READ_RECORDS] = readRecords
    f[F64.READ_BYTES] = readBytes
    Atomics.store(this.header, I32.READ, read | 0)
    if (Atomics.load(this.header, I32.SPACE_WAITING) !== 0) {
      Atomics.add(this.header, I32.SPACE_SIGNAL, 1)
      Atomics.notify(this.header, I32.SPACE_SIGNAL)
    }
  }

  /**
   * Consumer, for waitForData: `s` is the state read BEFORE checking for data (so that a commit followed by close
   * is never mistaken for end-of-stream). Data first: FAILED stops the producer, not the reading of what it
   * committed. Then 'failed', 'closed' (DRAINING and drained marks the ring CLOSED), or null to keep waiting.
   */
  protected pollState (s: RingState, hasData: boolean): WaitResult | null {
    if (hasData) return 'ready'
    if (s === RingState.FAILED) return 'failed'
    if (s === RingState.DRAINING) {
      this.markClosed()
      return 'closed'
    }
    return s === RingState.CLOSED ? 'closed' : null
  }

  protected markClosed (): void {
    if (Atomics.compareExchange(this.header, I32.STATE, RingState.DRAINING, RingState.CLOSED) === RingState.DRAINING) {
      this.wakeAll()
    }
  }

  /** The error a producer operation raises when the ring is not OPEN. */
  protected stateError (op: string, s: RingState): FlyScanError {
    if (s === RingState.FAILED) return this.failedError(op)
    return new FlyScanError(ErrorCode.RING_STATE,
      `ring ${this.name}: cannot ${op} in state ${RING_STATE_NAMES[s]} (only OPEN accepts writes)`,
      { details: { ring: this.name, op, state: RING_STATE_NAMES[s] } })
  }

  protected failedError (op: string): FlyScanError {
    const by = this.failedBy() ?? 'unknown'
    return new FlyScanError(ErrorCode.RING_FAILED, `ring ${this.name}: cannot ${op}: the ring was marked FAILED by the ${by}`,
      { details: { ring: this.name, op, failedBy: by } })
  }
}

/**
 * A third party's handle (the supervisor): read stats and state, mark the ring FAILED (wakes both sides).
 * Never blocks. Attaches to either kind of ring.
 */
export class RingControl extends RingHandle {
  constructor (buffer: SharedArrayBuffer) {
    super(buffer, 'supervisor', null)
  }
}

/** Opens a supervisor handle on a ring buffer (checks the layout). */
export function attachRingControl (buffer: SharedArrayBuffer): RingControl {
  return new RingControl(buffer)
}
