/**
 * The camera-capture worker's logic, without the thread or Channel Access: monitor updates in (ArrayData frames and
 * UniqueId_RBV values, each with its EPICS timestamp and arrival time), frames out into the frame ring. The worker
 * file wraps this in the CA code (connect, read the sizes, subscribe).
 *
 * - The first update of each monitor after subscribing is the PV's current value, not a new frame: it is discarded
 *   and counted as 'stale'. The capture is ready once both monitors delivered theirs.
 * - areaDetector posts ArrayData and UniqueId_RBV as two monitors, in either order, stamped with the same EPICS time
 *   (the NDArray's). A frame is paired with the UniqueId of equal timestamp: recent UniqueId updates are kept by
 *   timestamp; a frame whose UniqueId has not come yet waits in its slot (acquired, not published) until it comes,
 *   until the next frame, or for at most `pairTimeoutMs`, after which it takes lastUniqueId + 1 and counts as
 *   'unpaired'.
 * - Ring policy (DESIGN §2): drop-newest. A full ring drops the frame (counted by the ring in DROPPED); the monitor is
 *   never held up.
 * - A frame of another size than the slots (the camera's settings changed mid-scan) ends the capture with an error
 *   naming the PV and both sizes.
 *
 * Latency: `camera.monitor_to_ring_us` (callback start → publish), per frame.
 */
import { ErrorCode, FlyScanError } from '../errors.js'
import type { HistogramSet } from '../metrics/index.js'
import { nowNs } from '../metrics/index.js'
import type { FrameCounters } from '../devices/index.js'
import { frameBytes, frameDtype, type FrameShape } from '../hdf5/index.js'
import type { SlotWriter } from '../shm/index.js'

/**
 * The frame ring's per-slot metadata words (u32, SLOT_META_WORDS of them): declared here, by the producer, and read
 * by the frame writer. The slot's own timestamp is the frame's arrival time (nowNs at the start of its callback).
 */
export const FrameMeta = {
  UNIQUE_ID: 0,
  WIDTH: 1,
  HEIGHT: 2,
  /** NDDataType code (src/hdf5/frame-layout.ts ND_DATA_TYPES). */
  DTYPE: 3,
  /** EPICS timestamp: seconds past 1990-01-01 UTC, nanoseconds. */
  EPICS_SEC: 4,
  EPICS_NSEC: 5,
  /** Nanoseconds from arrival to publish (the pairing wait included), capped at 2^32 - 1. */
  PUBLISH_DELAY_NS: 6,
  /** Words used. */
  COUNT: 7
} as const

/** An ArrayData update as the logic sees it (the worker adapts libca's CaRawUpdate). */
export interface FrameUpdate {
  /** Bytes of the value (elements x element size). */
  readonly valueBytes: number
  /** Elements delivered. */
  readonly count: number
  readonly epicsSec: number
  readonly epicsNsec: number
  /** Copy the value into `dest` (its first valueBytes bytes). */
  copyTo (dest: Uint8Array): void
}

export interface CaptureLogicEvents {
  /** Both monitors delivered their initial (stale) update: frames from now on are new. */
  ready (): void
}

export interface CameraCaptureLogicOptions {
  readonly ring: SlotWriter
  readonly shape: FrameShape
  /** PV names, for messages. */
  readonly arrayDataPv: string
  readonly uniqueIdPv: string
  readonly histograms: HistogramSet
  readonly events: CaptureLogicEvents
  /** Bound on a frame waiting for its UniqueId (defaults.camera.uniqueIdPairTimeoutMs). */
  readonly pairTimeoutMs: number
  /** UniqueId updates kept for pairing (defaults.camera.uniqueIdHistory). */
  readonly uniqueIdHistory: number
  /** Clock (ns); default nowNs. */
  readonly nowNs?: () => number
}

/** Counters the capture side knows (the writer adds `written` and `bytesWritten`). */
export interface CaptureCounters {
  readonly received: number
  readonly dropped: number
  readonly stale: number
  readonly unpaired: number
  readonly uniqueIdGaps: number
  readonly firstUniqueId: number | undefined
  readonly lastUniqueId: number | undefined
}

interface PendingFrame {
  readonly arrivalNs: number
  readonly sec: number
  readonly nsec: number
  readonly bytes: number
}

const U32_MAX = 0xffff_ffff

export class CameraCaptureLogic {
  readonly #ring: SlotWriter
  readonly #opts: CameraCaptureLogicOptions
  readonly #hist: HistogramSet
  readonly #now: () => number
  readonly #frameBytes: number
  readonly #meta = new Uint32Array(FrameMeta.COUNT)
  /** Recent UniqueId updates: a small ring of (sec, nsec, id), searched newest first. */
  readonly #idSec: Uint32Array
  readonly #idNsec: Uint32Array
  readonly #idValue: Int32Array
  #idNext = 0
  #idCount = 0
  #pending: PendingFrame | undefined
  #sawArrayData = false
  #sawUniqueId = false
  #ready = false
  #ended = false
  /** The last UniqueId given to a frame, or the stale UniqueId_RBV value before the first frame (for the +1 fallback). */
  #lastId: number | undefined
  #received = 0
  #stale = 0
  #unpaired = 0
  #gaps = 0
  #firstId: number | undefined
  #lastFrameId: number | undefined

  constructor (options: CameraCaptureLogicOptions) {
    this.#ring = options.ring
    this.#opts = options
    this.#hist = options.histograms
    this.#now = options.nowNs ?? nowNs
    this.#frameBytes = frameBytes(options.shape)
    if (this.#frameBytes === 0 || frameDtype(options.shape.dtype) === undefined) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `${options.arrayDataPv}: cannot capture frames of ${options.shape.width} x ${options.shape.height} ${options.shape.dtype}`,
        { details: { pv: options.arrayDataPv } })
    }
    if (this.#frameBytes > options.ring.slotBytes) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `${options.arrayDataPv}: frames of ${this.#frameBytes} bytes do not fit the ring's ${options.ring.slotBytes}-byte slots`,
        { details: { pv: options.arrayDataPv, frameBytes: this.#frameBytes, slotBytes: options.ring.slotBytes } })
    }
    const n = Math.max(1, options.uniqueIdHistory)
    this.#idSec = new Uint32Array(n)
    this.#idNsec = new Uint32Array(n)
    this.#idValue = new Int32Array(n)
  }

  get ready (): boolean { return this.#ready }
  /** Whether a frame waits in its slot for its UniqueId. */
  get hasPending (): boolean { return this.#pending !== undefined }

  counters (): CaptureCounters {
    return {
      received: this.#received,
      dropped: this.#ring.dropped,
      stale: this.#stale,
      unpaired: this.#unpaired,
      uniqueIdGaps: this.#gaps,
      firstUniqueId: this.#firstId,
      lastUniqueId: this.#lastFrameId
    }
  }

  /**
   * One ArrayData monitor update, `arrivalNs` read at the start of its callback. Throws FLY_ERR_DETECTOR for a frame
   * of another size than the slots (the caller then ends the capture: fail()).
   */
  onArrayData (update: FrameUpdate, arrivalNs: number): void {
    if (this.#ended) return
    if (!this.#sawArrayData) {
      this.#sawArrayData = true
      this.#stale++
      this.#checkReady()
      return
    }
    if (update.valueBytes !== this.#frameBytes) {
      const s = this.#opts.shape
      throw new FlyScanError(ErrorCode.DETECTOR,
        `${this.#opts.arrayDataPv}: a frame of ${update.count} elements (${update.valueBytes} bytes) arrived; the capture was set up for ` +
        `${s.width} x ${s.height} ${s.dtype} (${s.width * s.height} elements, ${this.#frameBytes} bytes): the camera's size or data type changed during the scan`,
        { details: { pv: this.#opts.arrayDataPv, expectedBytes: this.#frameBytes, gotBytes: update.valueBytes, gotElements: update.count } })
    }
    this.#received++
    // The previous frame still waiting for its UniqueId will not get it before this one: it goes first.
    if (this.#pending !== undefined) this.#publishPending(undefined)
    const slot = this.#ring.tryAcquire(this.#frameBytes)
    if (slot === null) return // drop-newest: counted by the ring
    update.copyTo(slot)
    const frame: PendingFrame = { arrivalNs, sec: update.epicsSec, nsec: update.epicsNsec, bytes: this.#frameBytes }
    const id = this.#takeId(frame.sec, frame.nsec)
    if (id !== undefined) {
      this.#publish(frame, id)
    } else {
      this.#pending = frame
    }
  }

  /** One UniqueId_RBV monitor update (DBR_TIME_LONG). */
  onUniqueId (value: number, epicsSec: number, epicsNsec: number): void {
    if (this.#ended) return
    if (!this.#sawUniqueId) {
      this.#sawUniqueId = true
      this.#stale++
      this.#lastId ??= value
      this.#checkReady()
      return
    }
    const p = this.#pending
    if (p !== undefined && p.sec === epicsSec && p.nsec === epicsNsec) {
      this.#pending = undefined
      this.#publish(p, value)
      return
    }
    const i = this.#idNext
    this.#idSec[i] = epicsSec
    this.#idNsec[i] = epicsNsec
    this.#idValue[i] = value
    this.#idNext = (i + 1) % this.#idValue.length
    this.#idCount = Math.min(this.#idCount + 1, this.#idValue.length)
  }

  /** Publishes a frame that has waited `pairTimeoutMs` for its UniqueId (the worker calls this from a timer). */
  poll (now = this.#now()): void {
    const p = this.#pending
    if (p !== undefined && now - p.arrivalNs >= this.#opts.pairTimeoutMs * 1e6) this.#publishPending(undefined)
  }

  /**
   * End of capture (close, or the camera gone): a frame still waiting for its UniqueId is published, then the ring
   * is closed (DRAINING) so that the writer finishes the file. Idempotent.
   */
  finish (): void {
    if (this.#ended) return
    if (this.#pending !== undefined) this.#publishPending(undefined)
    this.#ended = true
    if (this.#ring.stateName() === 'OPEN') this.#ring.close()
  }

  /** A failure on this side (a size change): the frame waiting is published, the ring closed; the writer finishes. */
  fail (): void {
    this.finish()
  }

  #checkReady (): void {
    if (!this.#ready && this.#sawArrayData && this.#sawUniqueId) {
      this.#ready = true
      this.#opts.events.ready()
    }
  }

  /** The UniqueId recorded with this timestamp (removed from the history), or undefined. */
  #takeId (sec: number, nsec: number): number | undefined {
    const n = this.#idValue.length
    for (let k = 1; k <= this.#idCount; k++) {
      const i = (this.#idNext - k + n) % n
      if (this.#idSec[i] === sec && this.#idNsec[i] === nsec) {
        const id = this.#idValue[i] as number
        // Forget it (and anything older): a timestamp pairs once.
        this.#idCount = k - 1
        return id
      }
    }
    return undefined
  }

  #publishPending (id: number | undefined): void {
    const p = this.#pending
    if (p === undefined) return
    this.#pending = undefined
    if (id === undefined) this.#unpaired++
    this.#publish(p, id ?? (this.#lastId ?? 0) + 1)
  }

  #publish (frame: PendingFrame, id: number): void {
    const last = this.#lastFrameId
    if (last !== undefined && id - last > 1) this.#gaps += id - last - 1
    this.#firstId ??= id
    this.#lastFrameId = id
    this.#lastId = id
    const s = this.#opts.shape
    const m = this.#meta
    const now = this.#now()
    m[FrameMeta.UNIQUE_ID] = id
    m[FrameMeta.WIDTH] = s.width
    m[FrameMeta.HEIGHT] = s.height
    m[FrameMeta.DTYPE] = frameDtype(s.dtype)?.code ?? 0
    m[FrameMeta.EPICS_SEC] = frame.sec
    m[FrameMeta.EPICS_NSEC] = frame.nsec
    m[FrameMeta.PUBLISH_DELAY_NS] = Math.min(U32_MAX, Math.max(0, Math.round(now - frame.arrivalNs)))
    this.#ring.publish(frame.bytes, frame.arrivalNs, m)
    this.#hist.record('camera.monitor_to_ring_us', (now - frame.arrivalNs) / 1000)
  }
}

/** FrameCounters from the capture's counters and the writer's progress. */
export function frameCounters (capture: CaptureCounters, written: number, bytesWritten: number): FrameCounters {
  return {
    received: capture.received,
    written,
    dropped: capture.dropped,
    uniqueIdGaps: capture.uniqueIdGaps,
    firstUniqueId: capture.firstUniqueId,
    lastUniqueId: capture.lastUniqueId,
    bytesWritten
  }
}
