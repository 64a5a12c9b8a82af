/**
 * The frame-writer worker's logic, without the thread: drains the frame ring into one camera file (FrameHdfWriter),
 * frame by frame, and records where the time went. The worker file wraps this in a loop of bounded waits.
 *
 * Latency (per frame, microseconds):
 *   camera.ring_handoff_us        publish (capture worker) → read here
 *   hdf5.frame_write_us           the frame's resize + write_slice
 *   e2e.frame_arrival_to_disk_us  monitor arrival (capture worker) → written to the dataset
 *
 * A write failure (disk full, HDF5) stops writing: the frames already on disk are kept, the file is closed readable
 * with the error recorded, and the ring is marked FAILED so that the capture side stops filling it.
 */
import { ErrorCode, FlyScanError } from '../errors.js'
import type { HistogramSet } from '../metrics/index.js'
import { nowNs } from '../metrics/index.js'
import type { FrameHdfWriter } from '../hdf5/index.js'
import type { SlotReader } from '../shm/index.js'
import { FrameMeta } from './camera-capture-logic.js'

export interface FrameWriterEvents {
  /** Frames (and bytes) on disk after a flush. */
  progress (framesWritten: number, bytesWritten: number): void
}

export interface FrameWriterLogicOptions {
  readonly ring: SlotReader
  readonly writer: FrameHdfWriter
  readonly histograms: HistogramSet
  readonly events: FrameWriterEvents
  /** Clock (ns); default nowNs. */
  readonly nowNs?: () => number
  /**
   * Called with each frame's pixels while its slot is still held, after it is written (ROI analysis: the callee
   * copies what it needs now and never keeps the view). `index` is the frame's index in the file. Must not throw.
   */
  readonly onFrame?: (pixels: Uint8Array, index: number, frame: FrameInfo) => void
}

/** A frame's identity as the capture side stamped it. */
export interface FrameInfo {
  readonly uniqueId: number
  readonly epicsSec: number
  readonly epicsNsec: number
}

export type FrameDrainResult = 'idle' | 'ended' | 'failed'

export class FrameWriterLogic {
  readonly #ring: SlotReader
  readonly #writer: FrameHdfWriter
  readonly #hist: HistogramSet
  readonly #events: FrameWriterEvents
  readonly #now: () => number
  readonly #onFrame: FrameWriterLogicOptions['onFrame']
  #framesRead = 0
  #error: FlyScanError | undefined
  #finished = false

  constructor (options: FrameWriterLogicOptions) {
    this.#ring = options.ring
    this.#writer = options.writer
    this.#hist = options.histograms
    this.#events = options.events
    this.#now = options.nowNs ?? nowNs
    this.#onFrame = options.onFrame
  }

  get framesRead (): number { return this.#framesRead }
  get framesWritten (): number { return this.#writer.framesWritten }
  get bytesWritten (): number { return this.#writer.bytesWritten }
  /** The failure that stopped writing (disk full, HDF5, a FAILED ring), if any. */
  get error (): FlyScanError | undefined { return this.#error }
  get file (): string { return this.#writer.path }

  /**
   * Writes every frame available now. 'ended' once the producer closed the ring and it is drained (the file is then
   * closed), 'failed' when writing failed or the ring is FAILED (the file is closed with what it has), 'idle'
   * otherwise.
   */
  drain (): FrameDrainResult {
    if (this.#finished) return this.#error === undefined ? 'ended' : 'failed'
    // The state is read before draining: frames published before a close or a failure are drained below.
    const state = this.#ring.stateName()
    for (let f = this.#ring.tryRead(); f !== null; f = this.#ring.tryRead()) {
      const readNs = this.#now()
      this.#framesRead++
      const m = f.meta
      const publishNs = f.timestampNs + (m[FrameMeta.PUBLISH_DELAY_NS] as number)
      this.#hist.record('camera.ring_handoff_us', (readNs - publishNs) / 1000)
      const info: FrameInfo = {
        uniqueId: m[FrameMeta.UNIQUE_ID] as number,
        epicsSec: m[FrameMeta.EPICS_SEC] as number,
        epicsNsec: m[FrameMeta.EPICS_NSEC] as number
      }
      const index = this.#writer.framesWritten
      try {
        this.#writer.append(f.payload, { ...info, arrivalNs: f.timestampNs })
      } catch (err) {
        this.#ring.release()
        this.#ring.fail()
        this.finish(err instanceof FlyScanError ? err : new FlyScanError(ErrorCode.HDF5, `camera HDF5 file ${this.file}: ${String(err)}`, { cause: err }))
        return 'failed'
      }
      const done = this.#now()
      this.#onFrame?.(f.payload, index, info)
      this.#ring.release()
      this.#hist.record('hdf5.frame_write_us', (done - readNs) / 1000)
      this.#hist.record('e2e.frame_arrival_to_disk_us', (done - f.timestampNs) / 1000)
    }
    if (state === 'FAILED') {
      this.finish(new FlyScanError(ErrorCode.RING_FAILED,
        `the frame ring of ${this.file} was marked FAILED by the ${this.#ring.failedBy() ?? 'unknown'} side; frames after the failure are lost`,
        { details: { file: this.file, framesWritten: this.#writer.framesWritten } }))
      return 'failed'
    }
    if (state === 'DRAINING' || state === 'CLOSED') {
      this.finish()
      return this.#error === undefined ? 'ended' : 'failed'
    }
    return 'idle'
  }

  /** The periodic flush: attributes written, file flushed, progress reported. A failure ends the file (finish). */
  flush (): void {
    if (this.#finished) return
    try {
      this.#writer.flush()
    } catch (err) {
      this.#ring.fail()
      this.finish(err instanceof FlyScanError ? err : new FlyScanError(ErrorCode.HDF5, String(err), { cause: err }))
      return
    }
    this.#events.progress(this.#writer.framesWritten, this.#writer.bytesWritten)
  }

  /** Closes the file (with `error` recorded, if given) and reports the final progress. Idempotent. */
  finish (error?: FlyScanError): void {
    if (this.#finished) return
    this.#finished = true
    this.#error ??= error
    try {
      this.#writer.close({ error: this.#error })
    } catch (err) {
      this.#error ??= err instanceof FlyScanError ? err : new FlyScanError(ErrorCode.HDF5, String(err), { cause: err })
    }
    this.#events.progress(this.#writer.framesWritten, this.#writer.bytesWritten)
  }
}
