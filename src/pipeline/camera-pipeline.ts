/**
 * The supervisor's side of one camera's data path (docs/camera-pipeline.md): spawns the camera-capture worker, which
 * reads the camera's frame size and makes the frame ring; then the frame-writer worker on that ring, which creates
 * the file. `start()` resolves once the file is open and both monitors are subscribed. Frames then flow monitor →
 * ring slot → HDF5 without crossing this thread; the workers report counters and progress here.
 *
 * `stop()` ends the capture: it unsubscribes, closes the ring, and the writer drains it and closes the file.
 * `result()` waits for both workers and never rejects. A worker that dies is turned into an outcome, never
 * respawned: the ring is marked FAILED so that the other one wakes and finishes, and a file left open by a dead
 * writer has its open-for-write flag cleared so that every reader opens it.
 */
import path from 'node:path'
import { defaults } from '../../config/index.js'
import type { CaConfig } from '../config/index.js'
import type { FrameCounters } from '../devices/index.js'
import { ErrorCode, FlyScanError, fromWire } from '../errors.js'
import { clearWriterFlags, frameDtype, type FrameShape, type NdDataType } from '../hdf5/index.js'
import { HistogramSet, type LatencySummary } from '../metrics/index.js'
import type { AnalysisCounters, RoiSpec } from '../analysis/index.js'
import {
  WorkerHandle, type CameraCaptureCounters, type CameraCaptureData, type CameraCaptureDown, type CameraCaptureUp,
  type FrameWriterData, type FrameWriterDown, type FrameWriterUp, type RoiRow
} from '../protocol/index.js'
import { attachRingControl } from '../shm/index.js'
import { ensureDirectory } from './panda-pipeline.js'

export interface CameraPipelineOptions {
  /** Device name, for messages and the ring's name. */
  readonly name: string
  /** PV prefix, e.g. `XF:31ID1-ES{GigE-Cam:1}`. */
  readonly prefix: string
  /** Driver record-name part (default `cam1:`). */
  readonly driver?: string
  /** Standard-arrays plugin record-name part (default `image1:`). */
  readonly image?: string
  readonly ca: CaConfig
  /** The file to write (full path); missing directories are created. */
  readonly file: string
  /** Frame-ring slots (a power of two); default: sized by defaults.camera.ringBytes. */
  readonly slots?: number
  /** Frames the scan expects (0: unknown); reported with the result. */
  readonly expectedFrames?: number
  readonly flushPeriodMs?: number
  readonly readyTimeoutMs?: number
  readonly closeTimeoutMs?: number
  /** ROIs analysed beside the writer (its AnalysisPool); results come through events.roi. */
  readonly rois?: readonly RoiSpec[]
}

export interface CameraPipelineEvents {
  /** ROI results of frames written since the last call, in frame order, with the pool's counters. */
  roi?: (rows: readonly RoiRow[], counters: AnalysisCounters) => void
  /** Frames on disk (after each flush of the writer). */
  progress?: (framesWritten: number) => void
  /** A failure either worker reported (also listed in the result). */
  error?: (err: FlyScanError) => void
}

/** FrameCounters plus what only the capture side knows. */
export interface CameraCounters extends FrameCounters {
  /** Initial (current-value) monitor updates discarded at subscription. */
  readonly stale: number
  /** Frames that got no UniqueId of their timestamp in time and took lastUniqueId + 1. */
  readonly unpaired: number
}

export interface CameraPipelineResult {
  readonly file: string
  readonly shape: FrameShape
  readonly expectedFrames: number
  readonly counters: CameraCounters
  readonly errors: readonly FlyScanError[]
  readonly latency: Readonly<Record<string, LatencySummary>>
  /** The writer died with the file open; its flag was cleared (frames after its last flush are lost). */
  readonly recovered: boolean
}

const workerUrl = (name: string): URL => new URL(`../../workers/${name}.js`, import.meta.url)

const NO_CAPTURE: CameraCaptureCounters = { received: 0, dropped: 0, stale: 0, unpaired: 0, uniqueIdGaps: 0, firstUniqueId: -1, lastUniqueId: -1 }

export class CameraPipeline {
  readonly file: string
  readonly capture: WorkerHandle<CameraCaptureUp, CameraCaptureDown>
  #writer: WorkerHandle<FrameWriterUp, FrameWriterDown> | undefined
  #ring: SharedArrayBuffer | undefined
  #shape: FrameShape | undefined
  readonly #opts: CameraPipelineOptions
  readonly #events: CameraPipelineEvents
  readonly #readyTimeoutMs: number
  readonly #closeTimeoutMs: number
  readonly #errors: FlyScanError[] = []
  readonly #deaths: FlyScanError[] = []
  readonly #histograms = new HistogramSet()
  #capture: CameraCaptureCounters = NO_CAPTURE
  #written = 0
  #bytesWritten = 0
  #writerClosed = false
  #shapeSeen: { resolve: () => void, reject: (err: Error) => void } | undefined
  #result: Promise<CameraPipelineResult> | undefined

  private constructor (opts: CameraPipelineOptions, events: CameraPipelineEvents) {
    this.file = path.resolve(opts.file)
    this.#opts = opts
    this.#events = events
    this.#readyTimeoutMs = opts.readyTimeoutMs ?? defaults.workers.readyTimeoutMs
    this.#closeTimeoutMs = opts.closeTimeoutMs ?? defaults.workers.closeTimeoutMs
    const c = defaults.camera
    const captureData: CameraCaptureData = {
      kind: 'camera-capture',
      name: opts.name,
      prefix: opts.prefix,
      driver: opts.driver ?? c.driver,
      image: opts.image ?? c.image,
      ca: opts.ca,
      slots: opts.slots,
      ringBytes: c.ringBytes,
      minSlots: c.minSlots,
      maxSlots: c.maxSlots,
      connectTimeoutMs: c.connectTimeoutMs,
      pairTimeoutMs: c.uniqueIdPairTimeoutMs,
      uniqueIdHistory: c.uniqueIdHistory,
      progressPeriodMs: c.progressPeriodMs
    }
    this.capture = new WorkerHandle<CameraCaptureUp, CameraCaptureDown>({
      name: `camera-capture ${opts.name}`, url: workerUrl('camera-capture'), workerData: captureData, readyTimeoutMs: this.#readyTimeoutMs, closeTimeoutMs: this.#closeTimeoutMs
    })
    this.capture.on((msg) => {
      switch (msg.kind) {
        case 'shape': this.#onShape(msg.width, msg.height, msg.dtype, msg.ring); break
        case 'progress': this.#capture = msg.counters; break
        case 'closed': this.#capture = msg.counters; break
        case 'error': this.#error(fromWire(msg.error)); break
        case 'stats': if (msg.id === 0) this.#histograms.addEncoded(msg.histograms); break
        case 'ready': break
      }
    })
    this.capture.done.catch((err: unknown) => { this.#onDeath(err) })
  }

  /**
   * Spawns the capture worker, then (once it knows the camera's frame shape) the writer worker, and waits until the
   * file is open and both monitors are subscribed. Rejects with FLY_ERR_NOT_CONNECTED listing each cause (both
   * workers are then gone).
   */
  static async start (opts: CameraPipelineOptions, events: CameraPipelineEvents = {}): Promise<CameraPipeline> {
    await ensureDirectory(path.dirname(path.resolve(opts.file)))
    const p = new CameraPipeline(opts, events)
    try {
      await p.#waitShape()
      await Promise.all([p.capture.ready, (p.#writer as WorkerHandle<FrameWriterUp, FrameWriterDown>).ready])
    } catch (err) {
      await p.destroy('start failed')
      const causes = [p.capture.lastError, p.#writer?.lastError].filter((e) => e !== undefined)
      const texts = [err instanceof Error ? err.message : String(err), ...causes.map((c) => c.message)]
      throw new FlyScanError(ErrorCode.NOT_CONNECTED,
        `camera pipeline ${opts.name} (${opts.prefix}) did not start: ${[...new Set(texts)].join('; ')}`,
        { details: { camera: opts.name, prefix: opts.prefix, file: p.file }, cause: err })
    }
    return p
  }

  /** The camera's frame shape (known once start() resolved). */
  get shape (): FrameShape {
    if (this.#shape === undefined) throw new FlyScanError(ErrorCode.NOT_CONNECTED, `camera pipeline ${this.#opts.name}: the frame shape is not known yet`)
    return this.#shape
  }

  /** The live counters: capture side as of its last report (every progressPeriodMs), frames on disk as of the last flush. */
  counters (): CameraCounters {
    const c = this.#capture
    return {
      received: c.received,
      written: this.#written,
      dropped: c.dropped,
      uniqueIdGaps: c.uniqueIdGaps,
      firstUniqueId: c.firstUniqueId < 0 ? undefined : c.firstUniqueId,
      lastUniqueId: c.lastUniqueId < 0 ? undefined : c.lastUniqueId,
      bytesWritten: this.#bytesWritten,
      stale: c.stale,
      unpaired: c.unpaired
    }
  }

  /** Ends the capture: unsubscribe, close the ring; the writer drains it and closes the file. See result(). */
  stop (): void {
    this.capture.post({ kind: 'close' })
  }

  /** Waits for both workers to finish and returns the outcome. Never rejects. */
  result (): Promise<CameraPipelineResult> {
    this.#result ??= this.#collect()
    return this.#result
  }

  /**
   * Stops both workers now (frames in flight are lost; the file stays readable). Idempotent. The ring is failed:
   * the writer closes its file and exits, and the capture worker is told to close; each is bounded by closeTimeoutMs,
   * then terminated (the file is then recovered). The capture worker must destroy its CA context itself: a thread
   * terminated with a live libca context aborts the whole process later, when libca calls back into it (a circuit's
   * exception callback once the IOC goes). Waiting for the writer keeps the frame count it reports exact.
   */
  async destroy (reason = 'destroyed'): Promise<void> {
    if (this.#ring !== undefined) attachRingControl(this.#ring).fail()
    this.#shapeSeen?.reject(new FlyScanError(ErrorCode.CANCELLED, `camera pipeline ${this.#opts.name}: ${reason}`))
    await Promise.all([this.capture.close({ kind: 'close' }), this.#writer?.close()])
  }

  /** The frame-writer worker's handle, once the frame shape is known (for diagnostics and fault tests). */
  get writer (): WorkerHandle<FrameWriterUp, FrameWriterDown> | undefined {
    return this.#writer
  }

  #waitShape (): Promise<void> {
    if (this.#writer !== undefined) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new FlyScanError(ErrorCode.TIMEOUT,
          `camera pipeline ${this.#opts.name}: the capture worker did not report the frame shape within ${this.#readyTimeoutMs} ms`,
          { details: { camera: this.#opts.name, timeoutMs: this.#readyTimeoutMs } }))
      }, this.#readyTimeoutMs)
      this.#shapeSeen = {
        resolve: () => { clearTimeout(timer); resolve() },
        reject: (err) => { clearTimeout(timer); reject(err) }
      }
      this.capture.done.then(() => {
        this.#shapeSeen?.reject(new FlyScanError(ErrorCode.WORKER_EXIT, `camera pipeline ${this.#opts.name}: the capture worker ended before reporting the frame shape`))
      }, (err: unknown) => { this.#shapeSeen?.reject(err instanceof Error ? err : new Error(String(err))) })
    })
  }

  #onShape (width: number, height: number, dtype: string, ring: SharedArrayBuffer): void {
    if (this.#writer !== undefined || frameDtype(dtype) === undefined) return
    this.#shape = { width, height, dtype: dtype as NdDataType }
    this.#ring = ring
    const c = defaults.camera
    const writerData: FrameWriterData = {
      kind: 'frame-writer',
      ring,
      file: this.file,
      width,
      height,
      dtype,
      flushPeriodMs: this.#opts.flushPeriodMs ?? c.flushPeriodMs,
      waitSliceMs: c.waitSliceMs,
      diskReserveBytes: c.diskReserveBytes,
      ...(this.#opts.rois === undefined || this.#opts.rois.length === 0 ? {} : { rois: this.#opts.rois.map((r) => ({ ...r })) })
    }
    const writer = new WorkerHandle<FrameWriterUp, FrameWriterDown>({
      name: `frame-writer ${this.#opts.name}`, url: workerUrl('frame-writer'), workerData: writerData, readyTimeoutMs: this.#readyTimeoutMs, closeTimeoutMs: this.#closeTimeoutMs
    })
    writer.on((msg) => {
      switch (msg.kind) {
        case 'progress':
          this.#written = msg.framesWritten
          this.#bytesWritten = msg.bytesWritten
          this.#events.progress?.(msg.framesWritten)
          break
        case 'closed':
          this.#writerClosed = true
          this.#written = msg.framesWritten
          this.#bytesWritten = msg.bytesWritten
          break
        case 'error': this.#error(fromWire(msg.error)); break
        case 'stats': if (msg.id === 0) this.#histograms.addEncoded(msg.histograms); break
        case 'roi': this.#events.roi?.(msg.rows, msg.counters); break
        case 'ready': case 'flushed': break
      }
    })
    writer.done.catch((err: unknown) => { this.#onDeath(err) })
    this.#writer = writer
    this.#shapeSeen?.resolve()
  }

  #error (err: FlyScanError): void {
    this.#errors.push(err)
    this.#events.error?.(err)
  }

  /** A worker that dies fails the ring so that the other one wakes and finishes; its exit is the pipeline's failure. */
  #onDeath (err?: unknown): void {
    if (this.#ring !== undefined) attachRingControl(this.#ring).fail()
    if (err instanceof FlyScanError) this.#deaths.push(err)
  }

  /**
   * The first failure while the pipeline runs, for the detector to fail its scan on (never a respawn): an error a
   * worker reported (camera gone, disk full), else a worker that exited without having been told to (a crash), else
   * the ring failing under a worker.
   */
  get failure (): FlyScanError | undefined {
    // A ring marked FAILED is a consequence (the supervisor fails it when a worker dies): the cause goes first.
    return this.#errors.find((e) => e.code !== ErrorCode.RING_FAILED) ?? this.#deaths[0] ?? this.#errors[0]
  }

  async #collect (): Promise<CameraPipelineResult> {
    const handles = [this.capture, this.#writer].filter((h) => h !== undefined)
    const outcomes = await Promise.allSettled(handles.map(async (h) => { await h.done }))
    outcomes.forEach((o, i) => {
      if (o.status === 'fulfilled') return
      const handle = handles[i]
      // A worker that reported its error and then exited with code 1 has its error listed already.
      if (handle?.lastError !== undefined && this.#errors.some((e) => e.message === handle.lastError?.message) && !/destroyed/.test(String(o.reason))) return
      this.#errors.push(o.reason instanceof FlyScanError ? o.reason : new FlyScanError(ErrorCode.WORKER_EXIT, String(o.reason)))
    })
    let recovered = false
    if (this.#writer !== undefined && !this.#writerClosed) {
      // The writer died with the file open: clear its open-for-write flag (like `h5clear -s`).
      try {
        recovered = clearWriterFlags(this.file)
      } catch (err) {
        this.#errors.push(new FlyScanError(ErrorCode.HDF5, `camera file ${this.file}: the writer died and its file could not be recovered: ${err instanceof Error ? err.message : String(err)}`,
          { details: { file: this.file }, cause: err }))
      }
    }
    const latency = this.#histograms.summaries()
    this.#histograms.destroy()
    return {
      file: this.file,
      shape: this.#shape ?? { width: 0, height: 0, dtype: 'UInt8' },
      expectedFrames: this.#opts.expectedFrames ?? 0,
      counters: this.counters(),
      errors: this.#errors,
      latency,
      recovered
    }
  }
}
