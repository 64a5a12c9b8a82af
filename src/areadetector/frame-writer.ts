/**
 * TstFlyFrameWriter: tst-fly's own frame writer as a DetectorWriter (src/devices/core/detector.ts). Frames come from
 * the camera's standard-arrays plugin over Channel Access (`<prefix>image1:ArrayData`) and are written by tst-fly's
 * workers (CameraPipeline, docs/camera-pipeline.md) into a file from the PathProvider, on the machine running
 * tst-fly. The IOC-writer alternative (the IOC's HDF1 plugin writes) is IocHdfWriter.
 *
 * open() starts the pipeline and returns the data key; progress and counters come from the pipeline; close() ends the
 * capture, waits for the file to be finished and rejects with the first failure (camera gone, disk full...);
 * abort() stops now. `lastResult` keeps the last pipeline result (file, counters, latency) for the timing report.
 */
import { randomUUID } from 'node:crypto'
import { defaults } from '../../config/index.js'
import type { CaConfig } from '../config/index.js'
import { StreamDatumCursor, hdf5Resource, type DataKey, type DetectorWriter, type FrameCounters, type StreamAsset } from '../devices/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'
import { FRAME_DATASET, frameDtype } from '../hdf5/index.js'
import type { PathProvider, RunMetadata } from '../paths/index.js'
import { CameraPipeline, type CameraPipelineOptions, type CameraPipelineResult } from '../pipeline/index.js'
import type { RoiStream } from './roi-stream.js'

export interface TstFlyFrameWriterOptions {
  /** PV prefix, e.g. `XF:31ID1-ES{GigE-Cam:1}`. */
  readonly prefix: string
  /** Driver record-name part (default `cam1:`). */
  readonly driver?: string
  /** Standard-arrays plugin record-name part (default `image1:`). */
  readonly image?: string
  readonly ca: CaConfig
  readonly pathProvider: PathProvider
  readonly runMetadata?: RunMetadata
  /** Frame-ring slots (power of two); default sized by defaults.camera.ringBytes. */
  readonly slots?: number
  readonly flushPeriodMs?: number
  /** The camera's ROI stream (ADVimba.roiStream): its ROIs are analysed beside the writer and their results fed to it. */
  readonly roi?: RoiStream
}

interface Opened {
  readonly name: string
  readonly pipeline: CameraPipeline
  readonly framesPerEvent: number
  readonly shape: readonly number[]
  /** The stream_datum cursor of the file's stream_resource, once that is emitted. */
  datums: StreamDatumCursor | undefined
  closing: Promise<void> | undefined
}

const NO_COUNTERS: FrameCounters = { received: 0, written: 0, dropped: 0, uniqueIdGaps: 0, firstUniqueId: undefined, lastUniqueId: undefined, bytesWritten: 0 }

export class TstFlyFrameWriter implements DetectorWriter {
  readonly #opts: TstFlyFrameWriterOptions
  #opened: Opened | undefined
  #lastResult: CameraPipelineResult | undefined

  constructor (options: TstFlyFrameWriterOptions) {
    if (typeof options.prefix !== 'string' || options.prefix === '') {
      throw new FlyScanError(ErrorCode.BAD_INPUT, 'TstFlyFrameWriter: the camera prefix must be a non-empty string')
    }
    this.#opts = options
    options.roi?.bind()
  }

  /** The last scan's pipeline result (file, counters, errors, latency), once close() or abort() finished. */
  get lastResult (): CameraPipelineResult | undefined { return this.#lastResult }

  /**
   * The pipeline of the scan in progress (undefined before open() and after close()/abort() finished): for
   * diagnostics and fault tests, which reach its worker handles (`capture`) through it.
   */
  get pipeline (): CameraPipeline | undefined {
    const o = this.#opened
    return o === undefined || this.#lastResult !== undefined ? undefined : o.pipeline
  }

  /** The file of the scan in progress (or the last one). */
  get file (): string | undefined { return this.#opened?.pipeline.file ?? this.#lastResult?.file }

  async open (name: string, framesPerEvent: number, expectedFrames: number): Promise<Record<string, DataKey>> {
    if (!Number.isInteger(framesPerEvent) || framesPerEvent < 1) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `${name}: framesPerEvent must be an integer >= 1 (got ${String(framesPerEvent)})`, { details: { device: name } })
    }
    if (this.#opened !== undefined && this.#opened.closing === undefined) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `${name}: open() while the file ${this.#opened.pipeline.file} is still open (close() it first)`, { details: { device: name } })
    }
    const o = this.#opts
    const info = o.pathProvider.getPath(name, o.runMetadata)
    const pipelineOptions: CameraPipelineOptions = {
      name,
      prefix: o.prefix,
      driver: o.driver,
      image: o.image,
      ca: o.ca,
      file: info.path,
      slots: o.slots,
      expectedFrames,
      flushPeriodMs: o.flushPeriodMs,
      ...(o.roi === undefined ? {} : { rois: o.roi.rois })
    }
    const roi = o.roi
    const pipeline = await CameraPipeline.start(pipelineOptions, roi === undefined ? {} : { roi: (rows, counters) => { roi.push(rows, counters) } })
    const { width, height, dtype } = pipeline.shape
    const shape = framesPerEvent > 1 ? [framesPerEvent, height, width] : [height, width]
    this.#opened = { name, pipeline, framesPerEvent, shape, datums: undefined, closing: undefined }
    return {
      [name]: {
        source: `CA:${o.prefix}${o.image ?? defaults.camera.image}ArrayData`,
        dtype: 'array',
        shape,
        dtype_numpy: frameDtype(dtype)?.numpy ?? '|u1',
        external: 'STREAM:'
      }
    }
  }

  /**
   * Events complete on disk: frames flushed / framesPerEvent. Rejects with the pipeline's failure (camera gone, disk
   * full, a worker that died) while the file is open, so that a detector waiting for frames fails at once.
   */
  async getIndicesWritten (): Promise<number> {
    const o = this.#opened
    if (o === undefined) return 0
    const failure = o.closing === undefined ? o.pipeline.failure : undefined
    if (failure !== undefined) throw failure
    return Math.floor(o.pipeline.counters().written / o.framesPerEvent)
  }

  counters (): FrameCounters {
    const o = this.#opened
    if (o === undefined) return this.#lastResult?.counters ?? NO_COUNTERS
    const c = o.pipeline.counters()
    return {
      received: c.received,
      written: c.written,
      dropped: c.dropped,
      uniqueIdGaps: c.uniqueIdGaps,
      firstUniqueId: c.firstUniqueId,
      lastUniqueId: c.lastUniqueId,
      bytesWritten: c.bytesWritten
    }
  }

  /** stream_resource once per open(), then stream_datum for the events newly on disk, up to `indicesWritten`. */
  async * collectStreamDocs (name: string, indicesWritten: number): AsyncIterable<StreamAsset> {
    const o = this.#opened
    if (o === undefined) return
    if (o.datums === undefined) {
      o.datums = new StreamDatumCursor(randomUUID())
      const { width, height } = o.pipeline.shape
      yield ['stream_resource', hdf5Resource(o.datums.resource, name, o.pipeline.file, FRAME_DATASET, [1, height, width])]
    }
    const datum = o.datums.next(Math.min(indicesWritten, Math.floor(o.pipeline.counters().written / o.framesPerEvent)))
    if (datum !== undefined) yield ['stream_datum', datum]
  }

  /**
   * End the capture (frames already in the ring are written), wait for the file to be finished, and reject with the
   * first failure the pipeline reported. Idempotent (a second call settles as the first).
   */
  async close (): Promise<void> {
    const o = this.#opened
    if (o === undefined) return
    o.closing ??= (async () => {
      o.pipeline.stop()
      const result = await o.pipeline.result()
      this.#lastResult = result
      const first = result.errors[0]
      if (first !== undefined) throw first
    })()
    await o.closing
  }

  /** Stop now: the workers are terminated, the file recovered readable. Never rejects; idempotent. */
  async abort (reason: string): Promise<void> {
    const o = this.#opened
    if (o === undefined) return
    if (o.closing === undefined) {
      o.closing = (async () => {
        await o.pipeline.destroy(reason)
        this.#lastResult = await o.pipeline.result()
      })()
    }
    await o.closing.catch(() => {})
  }
}
