/**
 * Live analysis beside the writer: a piscina pool running workers/analysis-task.js. DESIGN.md §10 keeps piscina for
 * stateless CPU jobs; this is one (per-frame ROI statistics, edge fits).
 *
 * Frames never travel by postMessage. `submitRoi` copies only the ROIs' bounding box into one of a fixed set of
 * SharedArrayBuffers allocated at construction, and the task carries that buffer (shared, not copied) with the box
 * and the ROIs. A buffer is busy from submit until its result is delivered; when every buffer is busy the frame is
 * skipped and counted, never queued, so analysis never slows acquisition (the in-flight bound is the buffer count).
 *
 * ROI results reach `onRoi(tag, stats)` in submission order (a later frame whose task ends first waits for the
 * earlier one), and failures reach `onRoiError(tag, error)` in the same order. `fitEdge` returns a promise.
 *
 * Shutdown: `close()` refuses new work, waits for the tasks in flight (bounded by closeTimeoutMs, then destroys) and
 * ends the threads; `destroy()` terminates now, and every task in flight fails with FLY_ERR_CANCELLED. Both are
 * idempotent and settle every pending promise and callback before they resolve.
 *
 * Usable from any thread: a writer worker can own a pool (nested workers are fine in Node 20).
 */
import { Piscina } from 'piscina'
import { defaults } from '../../config/index.js'
import { ErrorCode, FlyScanError, fromWire } from '../errors.js'
import { HistogramSet, nowUs } from '../metrics/index.js'
import type { EdgeFit, EdgeFitOptions } from './edge-fit.js'
import { boundingBox, bytesPerPixel, validateRois, type FrameDtype, type RoiSpec, type RoiStats } from './roi.js'
import type { AnalysisTask, AnalysisTaskResult } from './task.js'

/** Histogram of submitRoi → result delivered, microseconds. */
export const ROI_LATENCY_HISTOGRAM = 'analysis.roi_us'

export interface AnalysisPoolOptions<Tag> {
  /** Pool threads (default defaults.analysis.threads). */
  readonly threads?: number
  /** ROI buffers = most ROI tasks in flight (default defaults.analysis.roiBuffers). */
  readonly roiBuffers?: number
  /** Bytes per ROI buffer = the largest bounding box (default defaults.analysis.roiBufferBytes). */
  readonly roiBufferBytes?: number
  /** Bound on close() waiting for tasks in flight (default defaults.analysis.closeTimeoutMs). */
  readonly closeTimeoutMs?: number
  /** Each frame's ROI statistics, in submission order. Must not throw (an exception is rethrown as uncaught). */
  readonly onRoi?: (tag: Tag, stats: readonly RoiStats[]) => void
  /** A frame whose ROI task failed (or was cancelled by destroy), in submission order. Must not throw. */
  readonly onRoiError?: (tag: Tag, error: FlyScanError) => void
}

export interface AnalysisCounters {
  /** Every submitRoi call that passed validation: completed + failed + skipped + inFlight. */
  readonly submitted: number
  /** ROI results delivered to onRoi. */
  readonly completed: number
  /** Frames not analysed: every buffer was busy, or the pool was closing. */
  readonly skipped: number
  /** ROI tasks that failed or were cancelled (delivered to onRoiError). */
  readonly failed: number
  /** ROI tasks submitted and not yet delivered. */
  readonly inFlight: number
}

interface PendingRoi<Tag> {
  readonly tag: Tag
  /** The buffer it holds until it is delivered (so at most roiBuffers frames are ever between submit and delivery). */
  readonly buffer: number
  settled: boolean
  stats: readonly RoiStats[] | undefined
  error: FlyScanError | undefined
}

const taskUrl = new URL('../../workers/analysis-task.js', import.meta.url)

function rethrowLater (err: unknown): void {
  queueMicrotask(() => { throw err })
}

export class AnalysisPool<Tag = number> {
  readonly #piscina: Piscina<AnalysisTask, AnalysisTaskResult>
  readonly #buffers: SharedArrayBuffer[]
  readonly #free: number[]
  readonly #bufferBytes: number
  readonly #closeTimeoutMs: number
  readonly #onRoi: ((tag: Tag, stats: readonly RoiStats[]) => void) | undefined
  readonly #onRoiError: ((tag: Tag, error: FlyScanError) => void) | undefined
  /** ROI tasks in submission order, delivered from the head once settled. */
  readonly #order: Array<PendingRoi<Tag>> = []
  /** Every task's settlement (ROI and edge fit), for close/destroy to await. */
  readonly #tasks = new Set<Promise<unknown>>()
  readonly #counts = { submitted: 0, completed: 0, skipped: 0, failed: 0 }
  /** submit → result latencies; stays readable after close. */
  readonly histograms = new HistogramSet()
  #accepting = true
  #destroyed = false
  #closed: Promise<void> | undefined
  #destroyedDone: Promise<void> | undefined
  #poolError: unknown

  constructor (options: AnalysisPoolOptions<Tag> = {}) {
    const threads = options.threads ?? defaults.analysis.threads
    const roiBuffers = options.roiBuffers ?? defaults.analysis.roiBuffers
    this.#bufferBytes = options.roiBufferBytes ?? defaults.analysis.roiBufferBytes
    this.#closeTimeoutMs = options.closeTimeoutMs ?? defaults.analysis.closeTimeoutMs
    for (const [name, v, least] of [['threads', threads, 1], ['roiBuffers', roiBuffers, 1], ['roiBufferBytes', this.#bufferBytes, 2]] as const) {
      if (!Number.isInteger(v) || v < least) {
        throw new FlyScanError(ErrorCode.BAD_INPUT, `analysis pool: ${name} ${v} must be a whole number ≥ ${least}`, { details: { [name]: v } })
      }
    }
    this.#onRoi = options.onRoi
    this.#onRoiError = options.onRoiError
    this.#buffers = Array.from({ length: roiBuffers }, () => new SharedArrayBuffer(this.#bufferBytes))
    this.#free = this.#buffers.map((_, i) => i).reverse()
    this.#piscina = new Piscina<AnalysisTask, AnalysisTaskResult>({
      filename: taskUrl.href,
      name: 'default',
      minThreads: threads,
      maxThreads: threads,
      closeTimeout: this.#closeTimeoutMs,
      recordTiming: false
    })
    // Piscina emits 'error' when its own close times out; without a listener that would throw.
    this.#piscina.on('error', (err: unknown) => { this.#poolError = err })
  }

  /**
   * Queues ROI statistics of one frame: `frame` is the frame's pixels (a view of `dtype`, or its raw bytes as a
   * Uint8Array), `width` × `height`, row after row. Copies the ROIs' bounding box into a free buffer and returns
   * true, or returns false (and counts a skip) when every buffer is busy or the pool is closing. Throws
   * FLY_ERR_BAD_INPUT for invalid ROIs, a frame shorter than its size, or a bounding box larger than a buffer
   * (check the ROIs once with validateRois before the scan).
   */
  submitRoi (frame: ArrayBufferView, width: number, height: number, dtype: FrameDtype, rois: readonly RoiSpec[], tag: Tag): boolean {
    const startUs = nowUs()
    const bpp = bytesPerPixel(dtype)
    if (rois.length === 0) throw new FlyScanError(ErrorCode.BAD_INPUT, 'submitRoi: no ROIs given')
    validateRois(rois, width, height)
    const element = (frame as Partial<Uint8Array>).BYTES_PER_ELEMENT ?? 1
    if (element !== 1 && element !== bpp) {
      throw new FlyScanError(ErrorCode.BAD_INPUT,
        `submitRoi: a view of ${element}-byte elements does not hold ${dtype} pixels (pass a matching view or the raw bytes)`,
        { details: { bytesPerElement: element, dtype } })
    }
    const frameBytes = width * height * bpp
    if (frame.byteLength < frameBytes) {
      throw new FlyScanError(ErrorCode.BAD_INPUT,
        `submitRoi: frame has ${frame.byteLength} bytes, fewer than ${width}×${height} ${dtype} (${frameBytes})`,
        { details: { bytes: frame.byteLength, width, height, dtype } })
    }
    const box = boundingBox(rois)
    const boxBytes = box.width * box.height * bpp
    if (boxBytes > this.#bufferBytes) {
      throw new FlyScanError(ErrorCode.BAD_INPUT,
        `submitRoi: the ROIs' bounding box ${box.width}×${box.height} ${dtype} needs ${boxBytes} bytes, more than an ` +
        `analysis buffer's ${this.#bufferBytes} (analysis.roiBufferBytes)`, { details: { boxBytes, bufferBytes: this.#bufferBytes } })
    }
    this.#counts.submitted++
    const index = this.#accepting ? this.#free.pop() : undefined
    if (index === undefined) {
      this.#counts.skipped++
      return false
    }
    const buffer = this.#buffers[index] as SharedArrayBuffer
    const src = new Uint8Array(frame.buffer, frame.byteOffset, frameBytes)
    const dst = new Uint8Array(buffer, 0, boxBytes)
    const rowBytes = box.width * bpp
    if (box.width === width) {
      dst.set(src.subarray(box.y * rowBytes, (box.y + box.height) * rowBytes))
    } else {
      for (let row = 0; row < box.height; row++) {
        const from = ((box.y + row) * width + box.x) * bpp
        dst.set(src.subarray(from, from + rowBytes), row * rowBytes)
      }
    }
    const pending: PendingRoi<Tag> = { tag, buffer: index, settled: false, stats: undefined, error: undefined }
    this.#order.push(pending)
    const task = this.#run({ kind: 'roi', buffer, dtype, box, rois }).then((result) => {
      if (result.ok && result.kind === 'roi') pending.stats = result.stats
      else pending.error = this.#unexpected('roi', result)
    }, (err: unknown) => {
      pending.error = this.#taskFailure('roi', err)
    }).finally(() => {
      pending.settled = true
      this.histograms.record(ROI_LATENCY_HISTOGRAM, nowUs() - startUs)
      this.#deliver()
    })
    this.#track(task)
    return true
  }

  /** Fits an absorption edge (src/analysis/edge-fit.ts) in a pool thread. Rejects with the fit's coded error. */
  fitEdge (energies: ArrayLike<number>, mu: ArrayLike<number>, options: EdgeFitOptions = {}): Promise<EdgeFit> {
    if (!this.#accepting) {
      return Promise.reject(new FlyScanError(ErrorCode.CANCELLED, `analysis pool is ${this.#destroyed ? 'destroyed' : 'closing'}: fitEdge refused`))
    }
    const task = this.#run({ kind: 'edge-fit', energies: Float64Array.from(energies), mu: Float64Array.from(mu), options: { ...options } })
      .then((result) => {
        if (result.ok && result.kind === 'edge-fit') return result.fit
        throw this.#unexpected('edge-fit', result)
      }, (err: unknown) => {
        throw this.#taskFailure('edge-fit', err)
      })
    this.#track(task)
    return task
  }

  /**
   * Resolves once a pool thread has loaded the task file and warmed up (src/analysis/task.ts warmUp): await it
   * before a scan so that its first frames are not skipped while the thread starts. Rejects like a task.
   */
  ready (): Promise<void> {
    if (!this.#accepting) {
      return Promise.reject(new FlyScanError(ErrorCode.CANCELLED, `analysis pool is ${this.#destroyed ? 'destroyed' : 'closing'}: ready refused`))
    }
    const task = this.#run({ kind: 'ping' }).then((result) => {
      if (!(result.ok && result.kind === 'ping')) throw this.#unexpected('ping', result)
    }, (err: unknown) => {
      throw this.#taskFailure('ping', err)
    })
    this.#track(task)
    return task
  }

  counters (): AnalysisCounters {
    return { ...this.#counts, inFlight: this.#order.length }
  }

  /** Refuses new work, waits for the tasks in flight (at most closeTimeoutMs, then destroys), ends the threads. */
  close (): Promise<void> {
    this.#closed ??= this.#close()
    return this.#closed
  }

  /** Terminates the threads now; every task in flight fails with FLY_ERR_CANCELLED. */
  destroy (): Promise<void> {
    this.#accepting = false
    this.#destroyed = true
    this.#destroyedDone ??= (async () => {
      await this.#piscina.destroy()
      await this.#settled()
    })()
    return this.#destroyedDone
  }

  async #close (): Promise<void> {
    this.#accepting = false
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([
      this.#settled().then(() => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), this.#closeTimeoutMs) })
    ])
    clearTimeout(timer)
    if (timedOut || this.#destroyed) await this.destroy()
    else await this.#piscina.close()
    await this.#settled()
  }

  /** Resolves once every task tracked so far has settled (tasks cannot be added once #accepting is false). */
  async #settled (): Promise<void> {
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks])
  }

  #run (task: AnalysisTask): Promise<AnalysisTaskResult> {
    return this.#piscina.run(task)
  }

  #track (task: Promise<unknown>): void {
    const settled: Promise<void> = task.then(() => undefined, () => undefined).then(() => { this.#tasks.delete(settled) })
    this.#tasks.add(settled)
  }

  #deliver (): void {
    while (this.#order.length > 0 && (this.#order[0] as PendingRoi<Tag>).settled) {
      const p = this.#order.shift() as PendingRoi<Tag>
      this.#free.push(p.buffer)
      try {
        if (p.error === undefined) {
          this.#counts.completed++
          this.#onRoi?.(p.tag, p.stats ?? [])
        } else {
          this.#counts.failed++
          this.#onRoiError?.(p.tag, p.error)
        }
      } catch (err) {
        rethrowLater(err)
      }
    }
  }

  #unexpected (kind: AnalysisTask['kind'], result: AnalysisTaskResult): FlyScanError {
    if (!result.ok) return fromWire(result.error)
    return new FlyScanError(ErrorCode.PROTOCOL_MESSAGE, `analysis ${kind} task answered with a ${result.kind} result`)
  }

  #taskFailure (kind: AnalysisTask['kind'], err: unknown): FlyScanError {
    const message = err instanceof Error ? err.message : String(err)
    if (this.#destroyed) {
      return new FlyScanError(ErrorCode.CANCELLED, `analysis ${kind} task cancelled: the pool was destroyed (${message})`, { cause: err })
    }
    const closeProblem = this.#poolError === undefined ? '' : ` (pool: ${String(this.#poolError)})`
    return new FlyScanError(ErrorCode.WORKER_EXIT, `analysis ${kind} task failed in its pool thread: ${message}${closeProblem}`, { cause: err })
  }
}
