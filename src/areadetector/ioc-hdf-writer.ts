/**
 * IocHdfWriter: the IOC's own NDFileHDF5 plugin (`<prefix>HDF1:`) writes the frames, for beamlines that keep files on
 * the IOC host; a DetectorWriter (src/devices/core/detector.ts) following ophyd-async's ADHDFWriter sequence
 * (docs/ioc-writer.md):
 *
 * open(name, framesPerEvent, expectedFrames):
 *   1. the HDF5 warm-up if HDF1:ArraySize0_RBV is 0 (hdf-warmup.ts; needs the driver's signals);
 *   2. the path from the PathProvider (as the IOC host sees it): CreateDirectory first (the directory is created when
 *      FilePath is written), then FilePath, FileName, FileTemplate `%s%s.h5`, AutoIncrement off, FileNumber 0,
 *      FileWriteMode Stream, NumCapture = expectedFrames (0: until Capture=0), LazyOpen, SWMRMode, NumExtraDims 0,
 *      EnableCallbacks, ArrayCounter and DroppedArrays reset to 0;
 *   3. FilePathExists_RBV must be Yes (else FLY_ERR_DETECTOR naming FilePath and the directory);
 *   4. Capture = 1 without waiting (the put completes only when the capture ends), then Capture_RBV = 1 (bounded);
 *   5. the data key: external 'STREAM:', shape [ArraySize1, ArraySize0] and dtype_numpy from the plugin.
 * Progress: NumCaptured_RBV (frames in the file). Counters: received = ArrayCounter_RBV, written = NumCaptured_RBV,
 * dropped = DroppedArrays_RBV (0 if the IOC has none), from monitors.
 * close(): wait (bounded) for NumCaptured_RBV to reach ArrayCounter_RBV - DroppedArrays_RBV, Capture = 0, Capture_RBV
 * = 0 (bounded), then WriteStatus must be Write OK, else FLY_ERR_DETECTOR with WriteMessage.
 */
import { randomUUID } from 'node:crypto'
import { defaults } from '../../config/index.js'
import type { CaConfig } from '../config/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'
import {
  Device, StreamDatumCursor, hdf5Resource,
  type ConnectFailure, type ConnectOptions, type DataKey, type DetectorWriter, type FrameCounters, type SignalR, type SignalRW,
  type StreamAsset, type Unsubscribe
} from '../devices/index.js'
import { caSignalR, caSignalRW } from '../backends/index.js'
import type { Dtype } from '../devices/index.js'
import type { PathInfo, PathProvider, RunMetadata } from '../paths/index.js'
import {
  defaultWarmupTimeouts, pollUntil, warmUpHdfPlugin,
  type WarmupDriver, type WarmupReadable, type WarmupResult, type WarmupTimeouts
} from './hdf-warmup.js'

/** The file template ADHDFWriter writes: `<FilePath_RBV><FileName>.h5` (FilePath_RBV ends with '/'). */
export const IOC_HDF_FILE_TEMPLATE = '%s%s.h5'
/** Where NDFileHDF5's default layout puts the frames (ADCore's NDFileHDF5LayoutXML.cpp, a hard link). */
export const IOC_HDF_DATASET = '/entry/data/data'

/** numpy dtype of each NDDataType (DataType_RBV). */
export const ND_DATA_TYPE_NUMPY: Readonly<Record<string, string>> = {
  Int8: '|i1', UInt8: '|u1', Int16: '<i2', UInt16: '<u2', Int32: '<i4', UInt32: '<u4', Int64: '<i8', UInt64: '<u8', Float32: '<f4', Float64: '<f8'
}

/** Bytes per element of a numpy dtype string like `<u2`. */
const itemSize = (dtypeNumpy: string): number => Number(dtypeNumpy.slice(2))

/** The NDFileHDF5 plugin's PVs ADHDFWriter uses (ophyd-async's NDFileHDFIO). A setting writes `X` and reads `X_RBV`. */
export class NDFileHDF5IO extends Device {
  readonly prefix: string
  readonly filePath: SignalRW<string>
  readonly filePathExists: SignalR<boolean>
  readonly createDirectory: SignalRW<number>
  readonly fileName: SignalRW<string>
  readonly fileTemplate: SignalRW<string>
  readonly fileNumber: SignalRW<number>
  readonly autoIncrement: SignalRW<boolean>
  /** Single, Capture, Stream. */
  readonly fileWriteMode: SignalRW<string>
  readonly numCapture: SignalRW<number>
  readonly numCaptured: SignalR<number>
  readonly lazyOpen: SignalRW<boolean>
  readonly swmrMode: SignalRW<boolean>
  readonly numExtraDims: SignalRW<number>
  readonly numFramesChunks: SignalRW<number>
  /** Capture (true starts; the put completes when the capture ends) / Capture_RBV. */
  readonly capture: SignalRW<boolean>
  readonly fullFileName: SignalR<string>
  /** 0 Write OK, 1 Write error. */
  readonly writeStatus: SignalR<number>
  readonly writeMessage: SignalR<string>
  /** Enable / Disable. */
  readonly enableCallbacks: SignalRW<string>
  readonly arrayCounter: SignalRW<number>
  readonly uniqueId: SignalR<number>
  /** Width and height of the last array the plugin received; 0 before any (the warm-up's test). */
  readonly arraySize0: SignalR<number>
  readonly arraySize1: SignalR<number>
  /** NDDataType of the last array (UInt8, UInt16, ...). */
  readonly dataType: SignalR<string>

  constructor (prefix: string, options: { readonly ca?: CaConfig } = {}) {
    super()
    this.prefix = prefix
    const base = options.ca === undefined ? {} : { config: options.ca }
    const rw = <T>(suffix: string, datatype: Dtype): SignalRW<T> =>
      caSignalRW<T>(`${prefix}${suffix}_RBV`, { ...base, datatype, writePv: `${prefix}${suffix}` })
    const r = <T>(suffix: string, datatype: Dtype): SignalR<T> => caSignalR<T>(`${prefix}${suffix}`, { ...base, datatype })
    this.filePath = rw('FilePath', 'string')
    this.filePathExists = r('FilePathExists_RBV', 'boolean')
    this.createDirectory = rw('CreateDirectory', 'integer')
    this.fileName = rw('FileName', 'string')
    this.fileTemplate = rw('FileTemplate', 'string')
    this.fileNumber = rw('FileNumber', 'integer')
    this.autoIncrement = rw('AutoIncrement', 'boolean')
    this.fileWriteMode = rw('FileWriteMode', 'string')
    this.numCapture = rw('NumCapture', 'integer')
    this.numCaptured = r('NumCaptured_RBV', 'integer')
    this.lazyOpen = rw('LazyOpen', 'boolean')
    this.swmrMode = rw('SWMRMode', 'boolean')
    this.numExtraDims = rw('NumExtraDims', 'integer')
    this.numFramesChunks = rw('NumFramesChunks', 'integer')
    this.capture = rw('Capture', 'boolean')
    this.fullFileName = r('FullFileName_RBV', 'string')
    this.writeStatus = r('WriteStatus', 'integer')
    this.writeMessage = r('WriteMessage', 'string')
    this.enableCallbacks = rw('EnableCallbacks', 'string')
    this.arrayCounter = rw('ArrayCounter', 'integer')
    this.uniqueId = r('UniqueId_RBV', 'integer')
    this.arraySize0 = r('ArraySize0_RBV', 'integer')
    this.arraySize1 = r('ArraySize1_RBV', 'integer')
    this.dataType = r('DataType_RBV', 'string')
  }

  /** DroppedArrays / DroppedArrays_RBV: not a child, so an IOC without it still connects (IocHdfWriter connects it apart). */
  droppedArraysSignal (options: { readonly ca?: CaConfig } = {}): SignalRW<number> {
    const base = options.ca === undefined ? {} : { config: options.ca }
    return caSignalRW<number>(`${this.prefix}DroppedArrays_RBV`, { ...base, datatype: 'integer', writePv: `${this.prefix}DroppedArrays` })
  }
}

export interface IocHdfWriterTimeouts {
  readonly putTimeoutMs: number
  readonly captureTimeoutMs: number
  readonly drainTimeoutMs: number
  readonly pollPeriodMs: number
}

export function defaultIocHdfWriterTimeouts (): IocHdfWriterTimeouts {
  const w = defaults.iocWriter
  return { putTimeoutMs: w.putTimeoutMs, captureTimeoutMs: w.captureTimeoutMs, drainTimeoutMs: w.drainTimeoutMs, pollPeriodMs: w.pollPeriodMs }
}

export interface IocHdfWriterOptions {
  /** Used in messages; the data key is the detector's name given to open(). */
  readonly name?: string
  /** Where each open()'s file goes, as the IOC host sees the path. */
  readonly pathProvider: PathProvider
  /** Passed to the path provider (the NSLS-II provider needs cycle and data_session). */
  readonly runMetadata?: RunMetadata
  /** The driver's signals, for the HDF5 warm-up (e.g. ADVimba's `drv`); without them a cold plugin fails open(). */
  readonly driver?: WarmupDriver
  readonly ca?: CaConfig
  readonly timeouts?: Partial<IocHdfWriterTimeouts>
  readonly warmupTimeouts?: Partial<WarmupTimeouts>
}

/** The scan the writer has open. */
interface Opened {
  readonly path: PathInfo
  readonly framesPerEvent: number
  readonly expectedFrames: number
  readonly shape: [number, number]
  readonly dtypeNumpy: string
  readonly framesPerChunk: number
  readonly unsubscribes: Unsubscribe[]
  received: number
  written: number
  dropped: number
  baselineUniqueId: number | undefined
  firstUniqueId: number | undefined
  lastUniqueId: number | undefined
  /** The stream_datum cursor of the file's stream_resource, once the IOC has named the file. */
  datums: StreamDatumCursor | undefined
}

const pvOf = (source: string): string => source.replace(/^(mock\+)?ca:\/\//, '')

function reason (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

export class IocHdfWriter extends Device implements DetectorWriter {
  readonly hdf: NDFileHDF5IO
  readonly #droppedArrays: SignalRW<number>
  #droppedConnected = false
  readonly #pathProvider: PathProvider
  readonly #runMetadata: RunMetadata | undefined
  readonly #driver: WarmupDriver | undefined
  readonly #timeouts: IocHdfWriterTimeouts
  readonly #warmupTimeouts: WarmupTimeouts
  #opened: Opened | undefined
  #closing: Promise<void> | undefined
  #lastWarmup: WarmupResult | undefined

  /** `hdfPrefix`: the plugin's record-name prefix, e.g. `XF:31ID1-ES{GigE-Cam:1}HDF1:`. */
  constructor (hdfPrefix: string, options: IocHdfWriterOptions) {
    super()
    if (typeof hdfPrefix !== 'string' || hdfPrefix === '') {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `IocHdfWriter ${options.name ?? ''}: the HDF plugin prefix must be a non-empty string`)
    }
    const ca = options.ca === undefined ? {} : { ca: options.ca }
    this.hdf = new NDFileHDF5IO(hdfPrefix, ca)
    this.#droppedArrays = this.hdf.droppedArraysSignal(ca)
    this.#pathProvider = options.pathProvider
    this.#runMetadata = options.runMetadata
    this.#driver = options.driver
    this.#timeouts = { ...defaultIocHdfWriterTimeouts(), ...options.timeouts }
    this.#warmupTimeouts = { ...defaultWarmupTimeouts(), ...options.warmupTimeouts }
    this.setName(options.name ?? '')
  }

  get label (): string { return this.name === '' ? this.hdf.prefix : this.name }
  /** What the last open()'s warm-up check did (undefined before the first open). */
  get lastWarmup (): WarmupResult | undefined { return this.#lastWarmup }
  /** The file of the scan open now, as the path provider gave it. */
  get pathInfo (): PathInfo | undefined { return this.#opened?.path }

  override setName (name: string): void {
    super.setName(name)
    this.#droppedArrays?.setName(name === '' ? '' : `${name}-hdf-droppedArrays`)
  }

  /** Connect the plugin's signals, and DroppedArrays apart (optional: an IOC without it still connects). */
  override async connectParts (options: Required<ConnectOptions>): Promise<ConnectFailure[]> {
    const [failures, optional] = await Promise.all([super.connectParts(options), this.#droppedArrays.connectParts(options)])
    this.#droppedConnected = optional.length === 0
    return failures
  }

  async open (name: string, framesPerEvent: number, expectedFrames: number): Promise<Record<string, DataKey>> {
    if (!Number.isInteger(framesPerEvent) || framesPerEvent < 1) {
      throw this.#fail(ErrorCode.BAD_INPUT, `framesPerEvent must be an integer >= 1 (got ${String(framesPerEvent)})`)
    }
    if (!Number.isInteger(expectedFrames) || expectedFrames < 0) {
      throw this.#fail(ErrorCode.BAD_INPUT, `expectedFrames must be an integer >= 0 (got ${String(expectedFrames)})`)
    }
    if (this.#opened !== undefined && this.#closing === undefined) {
      throw this.#fail(ErrorCode.BAD_INPUT, `a file is already open (${this.#opened.path.path}): close() first`)
    }
    // The last scan's close() may still be finishing; the new scan starts after it (its outcome was reported there).
    await this.#closing?.catch(() => {})
    this.#opened = undefined
    this.#closing = undefined
    const hdf = this.hdf
    const t = this.#timeouts

    // 1. The warm-up, if the plugin has never seen an array.
    if (this.#driver !== undefined) {
      this.#lastWarmup = await warmUpHdfPlugin(this.#driver, hdf, this.#warmupTimeouts)
    } else {
      const size0 = await this.#read(hdf.arraySize0)
      this.#lastWarmup = { warmedUp: false, restored: {}, arraySize0: size0 }
      if (size0 === 0) {
        throw this.#fail(ErrorCode.DETECTOR, `${pvOf(hdf.arraySize0.source)} is 0: the plugin has not seen an array since the IOC started, ` +
          'so it cannot open a file; give the writer the driver\'s signals (options.driver) to warm it up', pvOf(hdf.arraySize0.source))
      }
    }

    // 2. Where the file goes; CreateDirectory before FilePath (the directory is made when FilePath is processed).
    const info = this.#pathProvider.getPath(name, this.#runMetadata)
    await this.#write(hdf.createDirectory, -info.createDirDepth)
    const dir = info.directoryPath.endsWith('/') ? info.directoryPath : `${info.directoryPath}/`
    await Promise.all([
      this.#write(hdf.filePath, dir),
      this.#write(hdf.fileName, info.filename),
      this.#write(hdf.fileTemplate, IOC_HDF_FILE_TEMPLATE),
      this.#write(hdf.autoIncrement, false),
      this.#write(hdf.fileNumber, 0),
      this.#write(hdf.fileWriteMode, 'Stream'),
      this.#write(hdf.numCapture, expectedFrames),
      this.#write(hdf.lazyOpen, true),
      this.#write(hdf.swmrMode, true),
      this.#write(hdf.numExtraDims, 0),
      this.#write(hdf.enableCallbacks, 'Enable'),
      this.#write(hdf.arrayCounter, 0),
      ...(this.#droppedConnected ? [this.#write(this.#droppedArrays, 0)] : [])
    ])
    // 3. The directory must exist on the IOC host.
    if (!await this.#read(hdf.filePathExists)) {
      const filePathPv = pvOf(hdf.filePath.source).replace(/_RBV$/, '')
      throw this.#fail(ErrorCode.DETECTOR, `${filePathPv} = ${dir}: the directory does not exist on the IOC host and could not be created ` +
        `(CreateDirectory ${-info.createDirDepth}; ${pvOf(hdf.filePathExists.source)} = No)`, filePathPv)
    }
    const [height, width, dataType, framesPerChunk] = await Promise.all([
      this.#read(hdf.arraySize1), this.#read(hdf.arraySize0), this.#read(hdf.dataType), this.#read(hdf.numFramesChunks)
    ])
    const dtypeNumpy = ND_DATA_TYPE_NUMPY[dataType]
    if (dtypeNumpy === undefined) {
      throw this.#fail(ErrorCode.DETECTOR, `${pvOf(hdf.dataType.source)} = ${JSON.stringify(dataType)} is not an NDDataType tst-fly knows`, pvOf(hdf.dataType.source))
    }

    // 4. Capture: the put completes when the capture ends, so it is not waited for; Capture_RBV tells it started.
    const capturePv = pvOf(hdf.capture.source).replace(/_RBV$/, '')
    const started = hdf.capture.set(true, { wait: false, timeout: t.putTimeoutMs })
    try {
      await started
    } catch (err) {
      throw this.#fail(ErrorCode.DETECTOR, `writing 1 to ${capturePv} failed: ${reason(err)}`, capturePv, err)
    }
    try {
      await pollUntil(hdf.capture, (v) => v, t.captureTimeoutMs, t.pollPeriodMs, () => new Error('timeout'))
    } catch (err) {
      const message = await this.#read(hdf.writeMessage).catch(() => '(WriteMessage unreadable)')
      throw this.#fail(ErrorCode.DETECTOR, `${capturePv}_RBV did not become 1 within ${t.captureTimeoutMs} ms after ${capturePv} = 1` +
        (message === '' ? '' : `; ${pvOf(hdf.writeMessage.source)}: ${message}`), capturePv, err)
    }

    // 5. Counters from monitors, from now on.
    const opened: Opened = {
      path: info,
      framesPerEvent,
      expectedFrames,
      shape: [height, width],
      dtypeNumpy,
      framesPerChunk: Math.max(framesPerChunk, 1),
      unsubscribes: [],
      received: 0,
      written: 0,
      dropped: 0,
      baselineUniqueId: undefined,
      firstUniqueId: undefined,
      lastUniqueId: undefined,
      datums: undefined
    }
    opened.unsubscribes.push(
      hdf.arrayCounter.subscribeValue((v) => { opened.received = v }),
      hdf.numCaptured.subscribeValue((v) => { opened.written = Math.max(opened.written, v) }),
      hdf.uniqueId.subscribeValue((v) => {
        if (opened.baselineUniqueId === undefined) {
          opened.baselineUniqueId = v
          return
        }
        opened.firstUniqueId ??= v
        opened.lastUniqueId = v
      })
    )
    if (this.#droppedConnected) opened.unsubscribes.push(this.#droppedArrays.subscribeValue((v) => { opened.dropped = v }))
    this.#opened = opened
    return {
      [name]: {
        source: `ca://${pvOf(hdf.fullFileName.source)}`,
        dtype: 'array',
        shape: [height, width],
        dtype_numpy: dtypeNumpy,
        external: 'STREAM:'
      }
    }
  }

  /** Events complete in the file: NumCaptured_RBV / framesPerEvent (read now). */
  async getIndicesWritten (): Promise<number> {
    const opened = this.#opened
    if (opened === undefined) return 0
    const written = await this.#read(this.hdf.numCaptured)
    opened.written = Math.max(opened.written, written)
    return Math.floor(opened.written / opened.framesPerEvent)
  }

  counters (): FrameCounters {
    const o = this.#opened
    if (o === undefined) return { received: 0, written: 0, dropped: 0, uniqueIdGaps: 0, firstUniqueId: undefined, lastUniqueId: undefined, bytesWritten: 0 }
    return {
      received: o.received,
      written: o.written,
      dropped: o.dropped,
      // Monitors may coalesce updates, so UniqueId_RBV cannot tell a gap from a skipped update: no gaps are claimed.
      uniqueIdGaps: 0,
      firstUniqueId: o.firstUniqueId,
      lastUniqueId: o.lastUniqueId,
      bytesWritten: o.written * o.shape[0] * o.shape[1] * itemSize(o.dtypeNumpy)
    }
  }

  /**
   * stream_resource once the IOC has named the file (FullFileName_RBV; with LazyOpen it is set at the first frame),
   * then stream_datum up to `indicesWritten`.
   */
  async * collectStreamDocs (name: string, indicesWritten: number): AsyncIterable<StreamAsset> {
    const o = this.#opened
    if (o === undefined) return
    if (o.datums === undefined) {
      const file = await this.#read(this.hdf.fullFileName)
      if (file === '') return
      o.datums = new StreamDatumCursor(randomUUID())
      yield ['stream_resource', hdf5Resource(o.datums.resource, name, file, IOC_HDF_DATASET, [o.framesPerChunk, ...o.shape])]
    }
    const datum = o.datums.next(Math.min(indicesWritten, Math.floor(o.written / o.framesPerEvent)))
    if (datum !== undefined) yield ['stream_datum', datum]
  }

  /** Wait (bounded) for the frames received to be written, stop the capture, check WriteStatus. Idempotent. */
  async close (): Promise<void> {
    this.#closing ??= this.#finish(true, '')
    await this.#closing
  }

  /** Stop the capture now (frames in flight in the IOC may not reach the file); the IOC closes the file. Idempotent. */
  async abort (reason: string): Promise<void> {
    this.#closing ??= this.#finish(false, reason)
    await this.#closing
  }

  async #finish (drain: boolean, why: string): Promise<void> {
    const o = this.#opened
    if (o === undefined) return
    const hdf = this.hdf
    const t = this.#timeouts
    const capturePv = pvOf(hdf.capture.source).replace(/_RBV$/, '')
    try {
      if (drain) {
        const target = Math.max(o.received - o.dropped, 0)
        try {
          await pollUntil(hdf.numCaptured, (v) => v >= target || (o.expectedFrames > 0 && v >= o.expectedFrames), t.drainTimeoutMs, t.pollPeriodMs,
            (last) => new Error(`${String(last)} of ${target}`))
        } catch (err) {
          throw this.#fail(ErrorCode.DETECTOR, `${pvOf(hdf.numCaptured.source)} did not reach the ${target} frames the plugin received ` +
            `within ${t.drainTimeoutMs} ms (${reason(err)})`, pvOf(hdf.numCaptured.source), err)
        }
      }
      // The capture may have ended by itself (NumCapture reached); Capture = 0 is then harmless.
      try {
        await hdf.capture.set(false, { wait: true, timeout: t.putTimeoutMs })
      } catch (err) {
        throw this.#fail(ErrorCode.DETECTOR, `writing 0 to ${capturePv} failed${why === '' ? '' : ` (aborting: ${why})`}: ${reason(err)}`, capturePv, err)
      }
      try {
        await pollUntil(hdf.capture, (v) => !v, t.captureTimeoutMs, t.pollPeriodMs, () => new Error('timeout'))
      } catch (err) {
        throw this.#fail(ErrorCode.DETECTOR, `${capturePv}_RBV did not return to 0 within ${t.captureTimeoutMs} ms after ${capturePv} = 0`, capturePv, err)
      }
      o.written = Math.max(o.written, await this.#read(hdf.numCaptured))
      const status = await this.#read(hdf.writeStatus)
      if (status !== 0) {
        const message = await this.#read(hdf.writeMessage)
        throw this.#fail(ErrorCode.DETECTOR, `the IOC's HDF plugin reports a write error for ${o.path.path}: ${pvOf(hdf.writeMessage.source)} = ` +
          `${JSON.stringify(message)} (${o.written} frames written)`, pvOf(hdf.writeStatus.source))
      }
    } finally {
      for (const u of o.unsubscribes) u()
      o.unsubscribes.length = 0
    }
  }

  /** Bounded read of one signal; FLY_ERR_TIMEOUT / the CA error, naming the PV. */
  async #read<T> (signal: WarmupReadable<T>): Promise<T> {
    const pv = pvOf(signal.source)
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        signal.getValue(),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => { reject(this.#fail(ErrorCode.TIMEOUT, `reading ${pv} did not finish within ${this.#timeouts.putTimeoutMs} ms`, pv)) },
            this.#timeouts.putTimeoutMs)
        })
      ])
    } finally {
      clearTimeout(timer)
    }
  }

  /** A setting written with completion (bounded); FLY_ERR_DETECTOR naming the PV on failure. */
  async #write<T> (signal: SignalRW<T>, value: T): Promise<void> {
    const pv = pvOf(signal.source).replace(/_RBV$/, '')
    try {
      await signal.set(value, { wait: true, timeout: this.#timeouts.putTimeoutMs })
    } catch (err) {
      throw this.#fail(ErrorCode.DETECTOR, `writing ${JSON.stringify(value)} to ${pv} failed: ${reason(err)}`, pv, err)
    }
  }

  #fail (code: ErrorCode, message: string, pv?: string, cause?: unknown): FlyScanError {
    return new FlyScanError(code, `${this.label}: ${message}`, {
      details: { device: this.label, ...(pv === undefined ? {} : { pv }) },
      ...(cause === undefined ? {} : { cause })
    })
  }
}
