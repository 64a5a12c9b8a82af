/**
 * A simulated areaDetector camera shaped like ADVimba driving an Allied Vision Manta: the driver (`cam1:`), a
 * standard-arrays plugin (`image1:`) and an HDF5 file plugin (`HDF1:`), with the PVs an ophyd-async detector and
 * ADHDFWriter use. Every PV is a record (records.ts) serving its value only (no `.FIELD` PVs).
 *
 * Timing. Acquire=1 with TriggerMode Off (or On with TriggerSource Freerun/FixedRate) produces frame k when its
 * exposure ends, at start + k·period + AcquireTime, where period = max(AcquirePeriod, AcquireTime + deadtime,
 * 1/maxFrameRate). ImageMode Single takes 1 frame, Multiple NumImages, Continuous runs until Acquire=0. Acquire
 * returns to 0 (Done) after the last frame and the write's promise resolves then (put-callback semantics). A timer
 * fires at the next frame's time; when the period is shorter than the timer's resolution, each tick emits every frame
 * that is due (at most `maxFramesPerTick`), so the average rate holds and each frame keeps its own timestamp.
 *
 * Triggers. With TriggerMode On and TriggerSource LineN/ActionN, frames come only from `externalTrigger()` (the
 * simulated PandA calls it in-process); TriggerSource Software takes TriggerSoftware=1. A trigger while the previous
 * exposure plus readout (deadtime) is still going is dropped and counted in `stats.missedTriggers`, as a real camera
 * misses it. ExposureMode TriggerWidth exposes for the trigger's gate width.
 *
 * Frames. A few images per data type (a gradient with a bright spot whose position depends on the frame number modulo
 * FRAME_POOL) are computed when the camera is built, or over a few turns of the event loop after DataType changes,
 * never while frames are served; they are served by reference. The first 4 bytes of each frame hold its UniqueId
 * (little-endian uint32). `image1:ArrayData` is a CHAR waveform for an 8-bit camera and SHORT for a 16-bit one,
 * width·height elements; a frame of the other width is cast into it as a C cast would.
 *
 * HDF1 tracks the NDFileHDF5 state machine (FileWriteMode Single/Capture/Stream, Capture, NumCapture(d),
 * FullFileName, FileNumber with AutoIncrement, LazyOpen, WriteStatus/WriteMessage) as ADCore's NDPluginFile does,
 * and writes real HDF5 files in ADCore's default layout (hdf-file.ts): Stream appends each frame as it arrives and
 * flushes at least every `iocWriter.simFlushPeriodMs` (and every NumFramesFlush frames), Capture buffers NumCapture
 * frames and writes them in one file, Single writes a file per frame. FilePath is checked against the real
 * filesystem (FilePathExists_RBV) and CreateDirectory creates directories as ADCore does.
 */
import { mkdirSync, statSync } from 'node:fs'
import { defaults } from '../../../config/index.js'
import { ErrorCode, FlyScanError } from '../../errors.js'
import { DbrBase, EPICS_EPOCH_OFFSET_S, epicsTimeFromMs, type DbrValue } from '../../parsers/index.js'
import { openSimHdfFile, type SimFrameInfo, type SimFramePixels, type SimHdfTarget } from './hdf-file.js'
import type { SimClock } from './pv.js'
import { SimRecord, type RecordOptions, type SimPv } from './records.js'

/** Deadtime (s) of the Manta models named in DESIGN.md §7; other models need `deadtime`. */
export const CAMERA_MODEL_DEADTIME: Readonly<Record<string, number>> = {
  'Manta G-125': 63e-6,
  'Manta G-235': 390e-6,
  'Manta G-2460': 1961e-6
}

export const CAMERA_DEFAULTS = Object.freeze({
  model: 'Manta G-125',
  manufacturer: 'Allied Vision',
  width: 728,
  height: 544,
  dataType: 'UInt8' as CameraDataType,
  /** 0: no limit beyond AcquireTime + deadtime. */
  maxFrameRate: 0,
  /** AcquireTime limits (s). */
  minExposure: 10e-6,
  maxExposure: 60,
  acquireTime: 0.01,
  acquirePeriod: 0.1,
  driver: 'cam1:',
  image: 'image1:',
  hdf: 'HDF1:',
  /** asyn port names, as in ADVimba's example st.cmd and ADCore's commonPlugins.cmd. */
  portName: 'VMB1',
  maxFramesPerTick: 256
})

/** How many precomputed images each data type cycles through. */
export const FRAME_POOL = 8

/** The data types the simulated camera produces (Mono8, Mono12 in 16 bits). */
export const CAMERA_DATA_TYPES = ['UInt8', 'UInt16'] as const
export type CameraDataType = typeof CAMERA_DATA_TYPES[number]

export interface CameraOptions {
  /** e.g. `XF:31ID1-ES{GigE-Cam:1}`; PVs are `<prefix>cam1:Acquire` and so on. */
  readonly prefix: string
  readonly model?: string
  readonly manufacturer?: string
  readonly width?: number
  readonly height?: number
  /** The data type at start; it also sets image1:ArrayData's type (CHAR for UInt8, SHORT for UInt16). */
  readonly dataType?: CameraDataType
  /** Readout time between exposures (s); default: the model's (CAMERA_MODEL_DEADTIME), else the Manta G-125's. */
  readonly deadtime?: number
  /** Highest frame rate (Hz); 0 for none beyond AcquireTime + deadtime. */
  readonly maxFrameRate?: number
  readonly minExposure?: number
  readonly maxExposure?: number
  /** Record-name parts of the driver and plugins. */
  readonly driver?: string
  readonly image?: string
  readonly hdf?: string
  readonly portName?: string
  /** Most frames emitted by one timer tick. */
  readonly maxFramesPerTick?: number
}

/** What became of an external trigger. */
export type TriggerOutcome = 'accepted' | 'missed' | 'ignored'

export interface ExternalTrigger {
  /** The input the edge arrived on (default Line1); it must match TriggerSource. */
  readonly line?: string
  /** When the edge happened, on the clock's timeline (default now). */
  readonly atMs?: number
  /** The gate width (s), used with ExposureMode TriggerWidth (default AcquireTime). */
  readonly widthS?: number
}

export interface CameraStats {
  /** Frames produced since the camera was built. */
  readonly frames: number
  /** Triggers that came while the camera was still exposing or reading out. */
  readonly missedTriggers: number
  /** Triggers that came while not armed for them (not acquiring, another TriggerSource, frames all taken). */
  readonly ignoredTriggers: number
}

const IMAGE_MODES = ['Single', 'Multiple', 'Continuous']
const ON_OFF = ['Off', 'On']
/** TriggerSource states of a Manta G-125B (ADGenICam's AVT_Manta_G125B.template). */
export const TRIGGER_SOURCES = ['Freerun', 'Line1', 'Line2', 'Line3', 'Line4', 'FixedRate', 'Software']
const TRIGGER_OVERLAP = ['Off', 'ReadOut', 'PreviousFrame']
const EXPOSURE_MODES = ['Timed', 'TriggerWidth']
/** ADCore's NDDataType_t order (DataType and DataType_RBV). */
export const ND_DATA_TYPES = ['Int8', 'UInt8', 'Int16', 'UInt16', 'Int32', 'UInt32', 'Int64', 'UInt64', 'Float32', 'Float64']
const COLOR_MODES = ['Mono', 'Bayer', 'RGB1', 'RGB2', 'RGB3', 'YUV444', 'YUV422', 'YUV421']
const CONVERT_PIXEL_FORMATS = ['None', 'Mono8', 'Mono16', 'RGB8', 'RGB16']
/** ADCore's ADStatus order (DetectorState_RBV), with the severities ADBase.template gives each state. */
export const DETECTOR_STATES = ['Idle', 'Acquire', 'Readout', 'Correct', 'Saving', 'Aborting', 'Error', 'Waiting', 'Initializing', 'Disconnected', 'Aborted']
const DETECTOR_STATE_SEVERITIES = ['NO_ALARM', 'NO_ALARM', 'NO_ALARM', 'NO_ALARM', 'NO_ALARM', 'MINOR', 'MAJOR', 'NO_ALARM', 'NO_ALARM', 'INVALID', 'MINOR'] as const
const FILE_WRITE_MODES = ['Single', 'Capture', 'Stream']
const COMPRESSIONS = ['None', 'N-bit', 'szip', 'zlib', 'Blosc', 'BSLZ4', 'LZ4', 'JPEG']
/** Length of areaDetector's long-string waveforms (FilePath, FileName, ...). */
const LONG_STRING = 256

type RecordSpec = Omit<RecordOptions, 'name' | 'fields'>

const INPUT_OF: Readonly<Record<string, RecordOptions['type']>> = { ao: 'ai', bo: 'bi', mbbo: 'mbbi', longout: 'longin', stringout: 'stringin', waveform: 'waveform' }

const enumOf = (type: 'bo' | 'mbbo', states: readonly string[], value = 0): RecordSpec =>
  type === 'bo' ? { type, znam: states[0], onam: states[1], value } : { type, states, value }
const longString = (value = ''): RecordSpec => ({ type: 'waveform', ftvl: 'CHAR', nelm: LONG_STRING, value })

/** The records of one areaDetector port (driver or plugin), named `<prefix><part><suffix>`. */
class RecordSet {
  readonly records: SimRecord[] = []
  constructor (readonly base: string, readonly clock: SimClock) {}

  add (suffix: string, spec: RecordSpec): SimRecord {
    const record = new SimRecord({ ...spec, name: `${this.base}${suffix}`, fields: false }, this.clock)
    this.records.push(record)
    return record
  }

  /** A read-only readback. */
  rbv (suffix: string, spec: RecordSpec): SimRecord {
    return this.add(suffix, { ...spec, readOnly: true })
  }

  /**
   * A setpoint `suffix` and its `suffix_RBV`. After each write the readback takes `apply(value)` (default the value
   * as written); `apply` may clamp, or throw to refuse. Records with more to do replace the setpoint's onPut.
   */
  pair (suffix: string, spec: RecordSpec, apply?: (record: SimRecord) => number | string | DbrValue | undefined): [SimRecord, SimRecord] {
    const set = this.add(suffix, spec)
    const rbvType = INPUT_OF[spec.type] ?? spec.type
    const rbv = this.rbv(`${suffix}_RBV`, { ...spec, type: rbvType })
    set.onPut = (record) => {
      const v = apply === undefined ? record.pv.get().value : apply(record)
      if (v !== undefined) rbv.set(v)
    }
    return [set, rbv]
  }
}

/** One acquisition in progress. */
interface Acquisition {
  readonly startMs: number
  readonly periodMs: number
  readonly exposureMs: number
  readonly deadtimeMs: number
  /** Frames to take (Infinity for Continuous). */
  readonly total: number
  /** Frames come from triggers rather than the internal timer. */
  readonly triggered: boolean
  readonly source: string
  readonly frames: readonly DbrValue[]
  readonly dataType: CameraDataType
  /** Frames produced, and triggers accepted (triggered mode). */
  emitted: number
  accepted: number
  /** Triggered: no new trigger is accepted before this time. */
  busyUntilMs: number
  /** Triggered: arrival times of accepted frames not yet delivered. */
  readonly queue: number[]
  readonly waiters: Array<{ resolve: () => void, reject: (err: Error) => void }>
}

/** The NDArray a port received last, for its readbacks and the HDF plugin's file logic. */
interface ArrayInfo {
  readonly uniqueId: number
  readonly stampMs: number
  readonly dataType: CameraDataType
}

/** Format like epicsSnprintf for the conversions areaDetector file templates use: %s and %d (flags, width, precision). */
export function formatFileTemplate (template: string, path: string, name: string, number: number): string {
  const args: Array<string | number> = [path, name, number]
  return template.replace(/%([-+ 0#]*)(\d+)?(?:\.(\d+))?([sd%])/g, (whole, flags: string, width: string | undefined, precision: string | undefined, conv: string) => {
    if (conv === '%') return '%'
    const arg = args.shift()
    if (arg === undefined) return whole
    let out: string
    if (conv === 's') {
      out = String(arg)
      if (precision !== undefined) out = out.slice(0, Number(precision))
    } else {
      const n = Math.trunc(Number(arg))
      let digits = String(Math.abs(n))
      if (precision !== undefined) digits = digits.padStart(Number(precision), '0')
      const signed = n < 0 ? '-' : flags.includes('+') ? '+' : flags.includes(' ') ? ' ' : ''
      out = signed + digits
      if (width !== undefined && flags.includes('0') && !flags.includes('-') && precision === undefined) {
        out = signed + digits.padStart(Number(width) - signed.length, '0')
      }
    }
    if (width !== undefined && out.length < Number(width)) out = flags.includes('-') ? out.padEnd(Number(width)) : out.padStart(Number(width))
    return out
  })
}

export class SimCamera {
  readonly prefix: string
  readonly model: string
  readonly width: number
  readonly height: number
  /** Readout time between exposures (s). */
  readonly deadtime: number
  readonly maxFrameRate: number
  readonly #clock: SimClock
  readonly #minExposure: number
  readonly #maxExposure: number
  readonly #maxPerTick: number
  readonly #portName: string
  readonly #sets: RecordSet[]
  readonly #framePools = new Map<CameraDataType, DbrValue[]>()
  /** Pools being computed after a DataType change, one frame per turn of the event loop. */
  readonly #poolBuilds = new Map<CameraDataType, Promise<void>>()
  readonly #arrayDataBase: DbrBase
  #acq: Acquisition | undefined
  #cancelTimer: (() => void) | undefined
  #frames = 0
  #missed = 0
  #ignored = 0
  #closed = false

  // cam1:
  readonly #acquire: SimRecord
  readonly #acquireRbv: SimRecord
  readonly #acquireTimeRbv: SimRecord
  readonly #acquirePeriodRbv: SimRecord
  readonly #numImagesRbv: SimRecord
  readonly #numImagesCounter: SimRecord
  readonly #imageModeRbv: SimRecord
  readonly #triggerModeRbv: SimRecord
  readonly #triggerSourceRbv: SimRecord
  readonly #triggerOverlapRbv: SimRecord
  readonly #exposureModeRbv: SimRecord
  readonly #dataTypeRbv: SimRecord
  readonly #detectorState: SimRecord
  readonly #arrayCallbacksRbv: SimRecord
  readonly #cam: PortRecords
  // image1:
  readonly #image: PluginRecords
  readonly #arrayData: SimRecord
  // HDF1:
  readonly #hdf: HdfPlugin

  constructor (options: CameraOptions, clock: SimClock) {
    const d = CAMERA_DEFAULTS
    this.prefix = options.prefix
    this.model = options.model ?? d.model
    this.width = options.width ?? d.width
    this.height = options.height ?? d.height
    this.deadtime = options.deadtime ?? CAMERA_MODEL_DEADTIME[this.model] ?? CAMERA_MODEL_DEADTIME[d.model] as number
    this.maxFrameRate = options.maxFrameRate ?? d.maxFrameRate
    this.#clock = clock
    this.#minExposure = options.minExposure ?? d.minExposure
    this.#maxExposure = options.maxExposure ?? d.maxExposure
    this.#maxPerTick = options.maxFramesPerTick ?? d.maxFramesPerTick
    this.#portName = options.portName ?? d.portName
    const dataType = options.dataType ?? d.dataType
    this.#arrayDataBase = dataType === 'UInt8' ? DbrBase.CHAR : DbrBase.SHORT
    // The frames are computed now, not at the first Acquire: 8 frames of a 2048 x 2048 camera take 150-200 ms,
    // which must not stall the event loop (and every client of the IOC) in the middle of serving.
    this.frames(dataType)

    const cam = new RecordSet(`${this.prefix}${options.driver ?? d.driver}`, clock)
    cam.rbv('Manufacturer_RBV', { type: 'stringin', value: options.manufacturer ?? d.manufacturer })
    cam.rbv('Model_RBV', { type: 'stringin', value: this.model })
    this.#acquire = cam.add('Acquire', enumOf('bo', ['Done', 'Acquire']))
    this.#acquireRbv = cam.rbv('Acquire_RBV', { type: 'bi', znam: 'Done', onam: 'Acquiring', osv: 'MINOR', value: 0 })
    const seconds: RecordSpec = { type: 'ao', egu: 's', prec: 6 }
    this.#acquireTimeRbv = cam.pair('AcquireTime', { ...seconds, value: d.acquireTime }, (r) => this.#clampExposure(r.number))[1]
    this.#acquirePeriodRbv = cam.pair('AcquirePeriod', { ...seconds, value: d.acquirePeriod }, (r) => this.#clampPeriod(r.number))[1]
    this.#numImagesRbv = cam.pair('NumImages', { type: 'longout', value: 1 }, (r) => Math.max(r.number, 1))[1]
    this.#numImagesCounter = cam.rbv('NumImagesCounter_RBV', { type: 'longin', value: 0 })
    cam.pair('NumExposures', { type: 'longout', value: 1 }, (r) => Math.max(r.number, 1))
    this.#imageModeRbv = cam.pair('ImageMode', enumOf('mbbo', IMAGE_MODES, 1))[1]
    this.#triggerModeRbv = cam.pair('TriggerMode', enumOf('mbbo', ON_OFF))[1]
    this.#triggerSourceRbv = cam.pair('TriggerSource', enumOf('mbbo', TRIGGER_SOURCES))[1]
    this.#triggerOverlapRbv = cam.pair('TriggerOverlap', enumOf('mbbo', TRIGGER_OVERLAP))[1]
    cam.add('TriggerSoftware', enumOf('bo', ['Done', 'Trigger'])).onPut = (r) => {
      if (r.number !== 0) this.externalTrigger({ line: 'Software' })
      r.set(0)
    }
    this.#exposureModeRbv = cam.pair('ExposureMode', enumOf('mbbo', EXPOSURE_MODES))[1]
    cam.pair('ConvertPixelFormat', enumOf('mbbo', CONVERT_PIXEL_FORMATS))
    this.#detectorState = cam.rbv('DetectorState_RBV', { type: 'mbbi', states: DETECTOR_STATES, stateSeverities: DETECTOR_STATE_SEVERITIES, value: 0 })
    cam.rbv('MaxSizeX_RBV', { type: 'longin', value: this.width })
    cam.rbv('MaxSizeY_RBV', { type: 'longin', value: this.height })
    const [dataTypeSet, dataTypeRbv] = cam.pair('DataType', enumOf('mbbo', ND_DATA_TYPES, ND_DATA_TYPES.indexOf(dataType)), (r) => {
      if (!(CAMERA_DATA_TYPES as readonly string[]).includes(r.text)) {
        throw new FlyScanError(ErrorCode.BAD_INPUT,
          `${r.name}: ${this.model} (simulated) produces ${CAMERA_DATA_TYPES.join(' or ')}, not ${r.text}`, { details: { pv: r.name } })
      }
      return r.number
    })
    this.#dataTypeRbv = dataTypeRbv
    const applyDataType = dataTypeSet.onPut
    // The write completes once the new type's frames are computed (a frame per turn of the event loop).
    dataTypeSet.onPut = async (r) => {
      await applyDataType?.(r)
      await this.#framePoolReady(r.text as CameraDataType)
    }
    this.#arrayCallbacksRbv = cam.pair('ArrayCallbacks', enumOf('bo', ['Disable', 'Enable'], 1))[1]
    this.#cam = new PortRecords(cam, this.#portName, { dataType, driver: true })
    this.#cam.setShape(this.width, this.height, dataType) // a driver knows its frame size before the first frame
    this.#acquire.onPut = (r) => this.#onAcquire(r.number)

    const image = new RecordSet(`${this.prefix}${options.image ?? d.image}`, clock)
    this.#image = new PluginRecords(image, 'Image1', 'NDPluginStdArrays', this.#portName, dataType)
    this.#arrayData = image.rbv('ArrayData', {
      type: 'waveform', ftvl: this.#arrayDataBase === DbrBase.CHAR ? 'UCHAR' : 'SHORT', nelm: this.width * this.height
    })

    const hdf = new RecordSet(`${this.prefix}${options.hdf ?? d.hdf}`, clock)
    this.#hdf = new HdfPlugin(hdf, this.#portName, dataType)

    this.#sets = [cam, image, hdf]
  }

  /** Every PV served, driver first, then image1, then HDF1. */
  pvs (): SimPv[] {
    return this.#sets.flatMap((s) => s.records.map((r) => r.pv))
  }

  /** The records, for in-process users and tests. */
  records (): SimRecord[] {
    return this.#sets.flatMap((s) => s.records)
  }

  get acquiring (): boolean {
    return this.#acq !== undefined
  }

  get stats (): CameraStats {
    return { frames: this.#frames, missedTriggers: this.#missed, ignoredTriggers: this.#ignored }
  }

  /**
   * An edge on a trigger input, from the simulated PandA (in-process). Accepted when acquiring with TriggerMode On,
   * TriggerSource equal to `line`, frames still to take, and the previous exposure and readout over; the frame
   * arrives when its exposure ends. A trigger during the previous exposure or readout is `missed` (counted).
   */
  externalTrigger (trigger: ExternalTrigger = {}): TriggerOutcome {
    const acq = this.#acq
    const line = trigger.line ?? 'Line1'
    if (acq === undefined || !acq.triggered || acq.source !== line || acq.accepted >= acq.total) {
      this.#ignored++
      return 'ignored'
    }
    const at = trigger.atMs ?? this.#clock.nowMs()
    if (at < acq.busyUntilMs) {
      this.#missed++
      return 'missed'
    }
    const gated = this.#exposureModeRbv.text === 'TriggerWidth' && trigger.widthS !== undefined
    const exposureMs = gated ? (trigger.widthS as number) * 1000 : acq.exposureMs
    const overlap = this.#triggerOverlapRbv.text !== 'Off'
    acq.busyUntilMs = at + exposureMs + (overlap ? 0 : acq.deadtimeMs)
    acq.accepted++
    acq.queue.push(at + exposureMs)
    if (acq.queue.length === 1) this.#schedule(at + exposureMs)
    return 'accepted'
  }

  /** Stop timers and reject pending writes (the IOC is shutting down). */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#cancelTimer?.()
    this.#cancelTimer = undefined
    const acq = this.#acq
    this.#acq = undefined
    const err = new FlyScanError(ErrorCode.CANCELLED, `${this.prefix}: the simulated IOC closed`, { details: { pv: this.prefix } })
    for (const w of acq?.waiters ?? []) w.reject(err)
    this.#hdf.close(err)
  }

  /**
   * The precomputed images of `dataType`, in the ArrayData waveform's element type. The configured type's are built
   * with the camera and the other type's after a DataType write; for in-process users asking for a type not yet
   * built, they are computed now.
   */
  frames (dataType: CameraDataType): readonly DbrValue[] {
    let pool = this.#framePools.get(dataType)
    if (pool === undefined) {
      const painter = new FramePainter(this.width, this.height, dataType, this.#arrayDataBase)
      pool = Array.from({ length: FRAME_POOL }, (_, k) => painter.frame(k))
      this.#framePools.set(dataType, pool)
    }
    return pool
  }

  /** Whether the frames of `dataType` are computed (an acquisition of that type can start at once). */
  hasFrames (dataType: CameraDataType): boolean {
    return this.#framePools.has(dataType)
  }

  /** Undefined when the frames of `dataType` exist; otherwise computes them, a frame per turn of the event loop. */
  #framePoolReady (dataType: CameraDataType): Promise<void> | undefined {
    if (this.#framePools.has(dataType)) return undefined
    let build = this.#poolBuilds.get(dataType)
    if (build === undefined) {
      build = this.#buildPool(dataType).finally(() => this.#poolBuilds.delete(dataType))
      this.#poolBuilds.set(dataType, build)
    }
    return build
  }

  async #buildPool (dataType: CameraDataType): Promise<void> {
    const painter = new FramePainter(this.width, this.height, dataType, this.#arrayDataBase)
    const pool: DbrValue[] = []
    for (let k = 0; k < FRAME_POOL; k++) {
      await new Promise((resolve) => setImmediate(resolve))
      if (this.#closed) throw new FlyScanError(ErrorCode.CANCELLED, `${this.prefix}: the simulated IOC closed`, { details: { pv: this.prefix } })
      pool.push(painter.frame(k))
    }
    if (!this.#framePools.has(dataType)) this.#framePools.set(dataType, pool)
  }

  /** The frame period used by an acquisition with the current settings (ms). */
  framePeriodMs (): number {
    const exposure = this.#acquireTimeRbv.number
    const limit = this.maxFrameRate > 0 ? 1000 / this.maxFrameRate : 0
    return Math.max(this.#acquirePeriodRbv.number * 1000, (exposure + this.deadtime) * 1000, limit)
  }

  #clampExposure (s: number): number {
    return Math.min(Math.max(s, this.#minExposure), this.#maxExposure)
  }

  #clampPeriod (s: number): number {
    return Math.max(s, this.maxFrameRate > 0 ? 1 / this.maxFrameRate : 0, 0)
  }

  /** Acquire written: 1 starts (or joins) an acquisition and resolves at its end; 0 stops it. */
  #onAcquire (value: number): void | Promise<void> {
    if (value === 0) {
      if (this.#acq !== undefined) this.#finish()
      return
    }
    if (this.#closed) throw new FlyScanError(ErrorCode.CANCELLED, `${this.prefix}: the simulated IOC closed`)
    const current = this.#acq
    if (current !== undefined) return new Promise<void>((resolve, reject) => current.waiters.push({ resolve, reject }))
    const now = this.#clock.nowMs()
    const mode = this.#imageModeRbv.text
    const source = this.#triggerSourceRbv.text
    const dataType = this.#dataTypeRbv.text as CameraDataType
    const frames = this.#framePools.get(dataType)
    if (frames === undefined) {
      // DataType changed a moment ago and its frames are still being computed: start once they are, unless Acquire
      // went back to 0 meanwhile.
      return (this.#framePoolReady(dataType) ?? Promise.resolve()).then(() => this.#acquire.number === 1 ? this.#onAcquire(1) : undefined)
    }
    const acq: Acquisition = {
      startMs: now,
      periodMs: this.framePeriodMs(),
      exposureMs: this.#acquireTimeRbv.number * 1000,
      deadtimeMs: this.deadtime * 1000,
      total: mode === 'Single' ? 1 : mode === 'Multiple' ? this.#numImagesRbv.number : Infinity,
      triggered: this.#triggerModeRbv.text === 'On' && source !== 'Freerun' && source !== 'FixedRate',
      source,
      frames,
      dataType,
      emitted: 0,
      accepted: 0,
      busyUntilMs: -Infinity,
      queue: [],
      waiters: []
    }
    this.#acq = acq
    const done = new Promise<void>((resolve, reject) => acq.waiters.push({ resolve, reject }))
    this.#numImagesCounter.set(0)
    this.#cam.setShape(this.width, this.height, dataType)
    this.#acquireRbv.set(1)
    this.#detectorState.set('Acquire')
    if (!acq.triggered) this.#schedule(now + acq.exposureMs)
    return done
  }

  #schedule (atMs: number): void {
    this.#cancelTimer?.()
    this.#cancelTimer = this.#clock.setTimer(() => this.#tick(), Math.max(atMs - this.#clock.nowMs(), 0))
  }

  /** Emit every frame that is due (at most maxFramesPerTick), then schedule the next one or finish. */
  #tick (): void {
    this.#cancelTimer = undefined
    const acq = this.#acq
    if (acq === undefined) return
    const now = this.#clock.nowMs()
    let n = 0
    if (acq.triggered) {
      while (acq.queue.length > 0 && (acq.queue[0] as number) <= now && n < this.#maxPerTick) {
        this.#emitFrame(acq, acq.queue.shift() as number)
        n++
      }
    } else {
      while (acq.emitted < acq.total && n < this.#maxPerTick) {
        const at = acq.startMs + acq.emitted * acq.periodMs + acq.exposureMs
        if (at > now) break
        this.#emitFrame(acq, at)
        n++
      }
    }
    if (acq.emitted >= acq.total) {
      this.#finish()
      return
    }
    const next = n >= this.#maxPerTick
      ? now
      : acq.triggered ? acq.queue[0] : acq.startMs + acq.emitted * acq.periodMs + acq.exposureMs
    if (next !== undefined) this.#schedule(next)
  }

  #emitFrame (acq: Acquisition, stampMs: number): void {
    acq.emitted++
    this.#frames++
    const id = this.#cam.arrayCounterRbv.number + 1
    const frame = acq.frames[id % FRAME_POOL] as Uint8Array | Int16Array
    stampUniqueId(frame, id)
    const info: ArrayInfo = { uniqueId: id, stampMs, dataType: acq.dataType }
    this.#numImagesCounter.set(acq.emitted, { stampMs })
    this.#cam.received(info, this.width, this.height)
    if (this.#arrayCallbacksRbv.number === 0) return
    if (this.#image.accepts(this.#portName)) {
      this.#image.received(info, this.width, this.height)
      this.#arrayData.set(frame, { stampMs, always: true })
    }
    if (this.#hdf.accepts(this.#portName)) this.#hdf.receive(info, this.width, this.height, frame)
  }

  /** End the acquisition (all frames taken, or Acquire=0): Idle, Acquire back to Done, writes resolve. */
  #finish (): void {
    const acq = this.#acq
    this.#cancelTimer?.()
    this.#cancelTimer = undefined
    this.#acq = undefined
    this.#detectorState.set('Idle')
    this.#acquireRbv.set(0)
    this.#acquire.set(0)
    for (const w of acq?.waiters ?? []) w.resolve()
  }
}

/** NDArrayBase records every port has: counters, the last array's shape and type, and its identity. */
class PortRecords {
  readonly arrayCounter: SimRecord
  readonly arrayCounterRbv: SimRecord
  readonly #uniqueId: SimRecord
  readonly #timeStamp: SimRecord
  readonly #nDimensions: SimRecord
  readonly #sizeX: SimRecord
  readonly #sizeY: SimRecord
  readonly #size: SimRecord
  readonly #dataType: SimRecord | undefined
  readonly #colorMode: SimRecord

  /** `driver`: the camera builds the DataType pair itself; a plugin has DataType_RBV only. */
  constructor (set: RecordSet, portName: string, options: { dataType: CameraDataType, driver: boolean }) {
    set.rbv('PortName_RBV', { type: 'stringin', value: portName })
    this.arrayCounter = set.add('ArrayCounter', { type: 'longout', value: 0 })
    this.arrayCounterRbv = set.rbv('ArrayCounter_RBV', { type: 'longin', value: 0 })
    // Writing ArrayCounter sets the count (clients reset it to 0 before a scan).
    this.arrayCounter.onPut = (r) => { this.arrayCounterRbv.set(r.number) }
    this.#uniqueId = set.rbv('UniqueId_RBV', { type: 'longin', value: 0 })
    this.#timeStamp = set.rbv('TimeStamp_RBV', { type: 'ai', egu: 's', prec: 3, value: 0 })
    this.#nDimensions = set.rbv('NDimensions_RBV', { type: 'longin', value: 0 })
    this.#sizeX = set.rbv('ArraySizeX_RBV', { type: 'longin', value: 0 })
    this.#sizeY = set.rbv('ArraySizeY_RBV', { type: 'longin', value: 0 })
    set.rbv('ArraySizeZ_RBV', { type: 'longin', value: 0 })
    this.#size = set.rbv('ArraySize_RBV', { type: 'longin', value: 0 })
    this.#dataType = options.driver ? undefined : set.rbv('DataType_RBV', { ...enumOf('mbbo', ND_DATA_TYPES, ND_DATA_TYPES.indexOf(options.dataType)), type: 'mbbi' })
    this.#colorMode = options.driver
      ? set.pair('ColorMode', enumOf('mbbo', COLOR_MODES))[1]
      : set.rbv('ColorMode_RBV', { ...enumOf('mbbo', COLOR_MODES), type: 'mbbi' })
    set.add('NDAttributesFile', longString())
    set.add('WaitForPlugins', enumOf('bo', ['No', 'Yes']))
  }

  /** The driver sets its shape readbacks when acquisition starts. */
  setShape (width: number, height: number, dataType: CameraDataType): void {
    this.#sizeX.set(width)
    this.#sizeY.set(height)
    this.#size.set(width * height * (dataType === 'UInt8' ? 1 : 2))
    this.#nDimensions.set(2)
  }

  /** A frame passed through this port: counters, identity and shape readbacks. */
  received (info: ArrayInfo, width: number, height: number, countIt = true): void {
    const stampMs = info.stampMs
    if (countIt) this.arrayCounterRbv.set(this.arrayCounterRbv.number + 1, { stampMs })
    this.#uniqueId.set(info.uniqueId, { stampMs })
    this.#timeStamp.set(stampMs / 1000 - EPICS_EPOCH_OFFSET_S, { stampMs })
    this.setShape(width, height, info.dataType)
    this.#dataType?.set(ND_DATA_TYPES.indexOf(info.dataType))
    this.#colorMode.set(0)
  }
}

/** NDPluginBase records: the NDArrayBase ones plus the plugin's source port, callbacks switch and array sizes. */
class PluginRecords extends PortRecords {
  readonly #enable: SimRecord
  readonly #port: SimRecord
  readonly #size0: SimRecord
  readonly #size1: SimRecord
  readonly #size2: SimRecord

  constructor (set: RecordSet, portName: string, pluginType: string, sourcePort: string, dataType: CameraDataType) {
    super(set, portName, { dataType, driver: false })
    set.rbv('PluginType_RBV', { type: 'stringin', value: pluginType })
    this.#port = set.pair('NDArrayPort', { type: 'stringout', value: sourcePort })[1]
    set.pair('NDArrayAddress', { type: 'longout', value: 0 })
    this.#enable = set.pair('EnableCallbacks', enumOf('bo', ['Disable', 'Enable'], 1))[1]
    set.pair('BlockingCallbacks', enumOf('bo', ['No', 'Yes']))
    set.pair('QueueSize', { type: 'longout', value: 20 })
    set.pair('DroppedArrays', { type: 'longout', value: 0 })
    // areaDetector plugins include NDArrayBase, so they have Acquire too; it does nothing in a plugin.
    set.add('Acquire', enumOf('bo', ['Done', 'Acquire']))
    set.rbv('Acquire_RBV', { type: 'bi', znam: 'Done', onam: 'Acquiring', value: 0 })
    this.#size0 = set.rbv('ArraySize0_RBV', { type: 'longin', value: 0 })
    this.#size1 = set.rbv('ArraySize1_RBV', { type: 'longin', value: 0 })
    this.#size2 = set.rbv('ArraySize2_RBV', { type: 'longin', value: 0 })
  }

  /** Whether frames from `port` reach this plugin (callbacks enabled, NDArrayPort naming it). */
  accepts (port: string): boolean {
    return this.#enable.number === 1 && this.#port.text === port
  }

  override received (info: ArrayInfo, width: number, height: number, countIt = true): void {
    this.#size0.set(width, { stampMs: info.stampMs })
    this.#size1.set(height, { stampMs: info.stampMs })
    this.#size2.set(0, { stampMs: info.stampMs })
    super.received(info, width, height, countIt)
  }
}

/** A frame the HDF plugin received: its identity, shape and pixels (the pool's frame, by reference). */
interface ReceivedFrame {
  readonly info: ArrayInfo
  readonly width: number
  readonly height: number
  readonly pixels: SimFramePixels
}

function errorReason (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** The NDArray's default attributes as NDFileHDF5 stores them (UniqueId, timeStamp, EPICS time stamp). */
function frameAttributes (info: ArrayInfo): SimFrameInfo {
  const epics = epicsTimeFromMs(info.stampMs)
  return { uniqueId: info.uniqueId, timeStamp: info.stampMs / 1000 - EPICS_EPOCH_OFFSET_S, epicsSec: epics.secPastEpoch, epicsNsec: epics.nsec }
}

/**
 * The NDFileHDF5 plugin, as ADCore's NDPluginFile runs it (Capture, FileWriteMode, NumCapture(d), file names and
 * numbers), writing real files (hdf-file.ts). Write errors set WriteStatus to Write error and WriteMessage to the
 * reason, as NDPluginFile does; a frame that could not be written is not counted.
 */
class HdfPlugin extends PluginRecords {
  readonly #clock: SimClock
  readonly #filePath: SimRecord
  readonly #filePathRbv: SimRecord
  readonly #filePathExists: SimRecord
  readonly #createDirectory: SimRecord
  readonly #fileNameRbv: SimRecord
  readonly #fileNumber: SimRecord
  readonly #fileNumberRbv: SimRecord
  readonly #autoIncrementRbv: SimRecord
  readonly #fileTemplateRbv: SimRecord
  readonly #fullFileName: SimRecord
  readonly #autoSaveRbv: SimRecord
  readonly #writeFile: SimRecord
  readonly #writeFileRbv: SimRecord
  readonly #fileWriteModeRbv: SimRecord
  readonly #capture: SimRecord
  readonly #captureRbv: SimRecord
  readonly #numCaptureRbv: SimRecord
  readonly #numCaptured: SimRecord
  readonly #writeStatus: SimRecord
  readonly #writeMessage: SimRecord
  readonly #lazyOpenRbv: SimRecord
  readonly #numFramesChunksRbv: SimRecord
  readonly #numFramesFlushRbv: SimRecord
  readonly #swmrModeRbv: SimRecord
  readonly #swmrActive: SimRecord
  #capturing = false
  #lazy = false
  /** The last frame received (Single mode's WriteFile writes it; its shape sizes a new file). */
  #last: ReceivedFrame | undefined
  /** Capture mode: copies of the frames captured, written when the buffer is full (AutoSave) or on WriteFile. */
  #buffer: ReceivedFrame[] = []
  /** Stream mode: the open file. */
  #file: SimHdfTarget | undefined
  #cancelFlush: (() => void) | undefined
  #waiters: Array<{ resolve: () => void, reject: (err: Error) => void }> = []

  constructor (set: RecordSet, sourcePort: string, dataType: CameraDataType) {
    super(set, 'FileHDF1', 'NDFileHDF5', sourcePort, dataType)
    this.#clock = set.clock
    ;[this.#filePath, this.#filePathRbv] = set.pair('FilePath', longString())
    this.#filePath.onPut = () => { this.#checkPath(true) }
    this.#filePathExists = set.rbv('FilePathExists_RBV', { type: 'bi', znam: 'No', onam: 'Yes', zsv: 'MAJOR', value: 0 })
    this.#createDirectory = set.pair('CreateDirectory', { type: 'longout', value: 0 })[0]
    this.#fileNameRbv = set.pair('FileName', longString())[1]
    ;[this.#fileNumber, this.#fileNumberRbv] = set.pair('FileNumber', { type: 'longout', value: 0 })
    this.#autoIncrementRbv = set.pair('AutoIncrement', enumOf('bo', ['No', 'Yes']))[1]
    this.#fileTemplateRbv = set.pair('FileTemplate', longString('%s%s_%3.3d.h5'))[1]
    this.#fullFileName = set.rbv('FullFileName_RBV', longString())
    this.#autoSaveRbv = set.pair('AutoSave', enumOf('bo', ['No', 'Yes']))[1]
    ;[this.#writeFile, this.#writeFileRbv] = set.pair('WriteFile', enumOf('bo', ['Done', 'Write']))
    this.#writeFile.onPut = (r) => { if (r.number !== 0) this.#writeNow(); r.set(0) }
    set.pair('FileFormat', enumOf('mbbo', ['HDF5']))
    this.#fileWriteModeRbv = set.pair('FileWriteMode', enumOf('mbbo', FILE_WRITE_MODES))[1]
    ;[this.#capture, this.#captureRbv] = set.pair('Capture', enumOf('bo', ['Done', 'Capture']))
    this.#capture.onPut = (r) => this.#onCapture(r.number)
    this.#numCaptureRbv = set.pair('NumCapture', { type: 'longout', value: 1 })[1]
    this.#numCaptured = set.rbv('NumCaptured_RBV', { type: 'longin', value: 0 })
    this.#writeStatus = set.rbv('WriteStatus', { type: 'bi', znam: 'Write OK', onam: 'Write error', osv: 'MAJOR', value: 0 })
    this.#writeMessage = set.rbv('WriteMessage', longString())
    this.#lazyOpenRbv = set.pair('LazyOpen', enumOf('bo', ['No', 'Yes']))[1]
    // NDFileHDF5 settings. NumFramesChunks, NumFramesFlush and SWMRMode shape the file; the others are stored only.
    this.#numFramesChunksRbv = set.pair('NumFramesChunks', { type: 'longout', value: 1 })[1]
    set.pair('NumRowChunks', { type: 'longout', value: 0 })
    set.pair('NumColChunks', { type: 'longout', value: 0 })
    set.pair('ChunkSizeAuto', enumOf('bo', ['No', 'Yes'], 1))
    this.#numFramesFlushRbv = set.pair('NumFramesFlush', { type: 'longout', value: 0 })[1]
    set.pair('NumExtraDims', { type: 'longout', value: 0 })
    set.pair('Compression', enumOf('mbbo', COMPRESSIONS))
    this.#swmrModeRbv = set.pair('SWMRMode', enumOf('bo', ['Off', 'On']))[1]
    set.rbv('SWMRSupported_RBV', { type: 'bi', znam: 'Not Supported', onam: 'Supported', value: 1 })
    this.#swmrActive = set.rbv('SWMRActive_RBV', { type: 'bi', znam: 'Off', onam: 'Active', value: 0 })
    set.pair('XMLFileName', longString())
    set.pair('PositionMode', enumOf('bo', ['Off', 'On']))
    set.pair('StoreAttr', enumOf('bo', ['No', 'Yes']))
    set.pair('StorePerform', enumOf('bo', ['No', 'Yes']))
    set.add('FlushNow', enumOf('bo', ['Done', 'Flush'])).onPut = (r) => {
      if (r.number !== 0) this.#flush()
      r.set(0)
    }
  }

  /** A frame arrived (callbacks on, port matching): readbacks, then the file logic of NDPluginFile. */
  receive (info: ArrayInfo, width: number, height: number, pixels: DbrValue): void {
    const frame: ReceivedFrame = { info, width, height, pixels: pixels as SimFramePixels }
    this.#last = frame
    // Like NDPluginFile, the plugin counts only the arrays it saves.
    this.received(info, width, height, false)
    const mode = this.#fileWriteModeRbv.text
    if (mode === 'Single') {
      if (this.#autoSaveRbv.number === 1) this.#writeSingle(frame)
      return
    }
    if (!this.#capturing) return
    const numCapture = this.#numCaptureRbv.number
    const captured = this.#numCaptured.number
    if (mode === 'Capture') {
      let n = captured
      if (n < numCapture) {
        n++
        // The pool's frames are reused: the buffer keeps copies.
        this.#buffer.push({ ...frame, pixels: frame.pixels.slice() })
        this.#numCaptured.set(n)
        this.#countSaved()
      }
      if (n === numCapture) {
        if (this.#autoSaveRbv.number === 1) this.#writeBuffered()
        this.#endCapture()
      }
      return
    }
    // Stream: the file opens at the first frame if LazyOpen was on when Capture started; a frame that cannot be
    // written (no directory, a write error) is not counted and capture goes on, as NDPluginFile does.
    if (this.#file === undefined && !this.#openFile()) return
    const file = this.#file as SimHdfTarget
    if (!this.#append(file, frame)) return
    this.#countSaved()
    this.#numCaptured.set(captured + 1)
    this.#flushSoon(file)
    if (captured + 1 === numCapture) this.#stopStream()
  }

  close (err: Error): void {
    this.#closeFile()
    this.#buffer = []
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w.reject(err)
  }

  #countSaved (): void {
    this.arrayCounterRbv.set(this.arrayCounterRbv.number + 1)
  }

  #onCapture (value: number): void | Promise<void> {
    if (value === 0) {
      if (this.#capturing) {
        if (this.#fileWriteModeRbv.text === 'Stream') this.#stopStream()
        else this.#endCapture()
      }
      return
    }
    if (this.#capturing) return new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }))
    this.#lazy = this.#lazyOpenRbv.number === 1
    this.#status(0, '')
    this.#fullFileName.set('')
    const mode = this.#fileWriteModeRbv.text
    const refuse = (message: string): void => {
      this.#status(1, message)
      this.#capture.set(0)
    }
    if (mode === 'Single') return refuse('ERROR: capture not supported in Single mode')
    if (this.#last === undefined && (mode === 'Capture' || !this.#lazy)) return refuse('ERROR, must collect an array to get dimensions first')
    this.#numCaptured.set(0)
    this.#buffer = []
    if (mode === 'Stream') {
      if (!this.#lazy && !this.#openFile()) {
        this.#capture.set(0)
        return
      }
      this.#writeFileRbv.set(1)
    }
    if (this.#lazy) this.#writeMessage.set('Lazy Open...')
    this.#capturing = true
    this.#captureRbv.set(1)
    return new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }))
  }

  /**
   * Open a file for frames shaped as the last one: FullFileName from the template, then FileNumber+1 with
   * AutoIncrement. False (WriteStatus error, WriteMessage why) when the directory is missing or HDF5 refuses the file.
   */
  #openFile (): boolean {
    if (!this.#checkPath(false)) {
      this.#status(1, `Error opening file: directory does not exist: ${this.#filePathRbv.text}`)
      return false
    }
    const name = this.#nextFileName()
    this.#fullFileName.set(name)
    if (this.#autoIncrementRbv.number === 1) {
      const next = this.#fileNumberRbv.number + 1
      this.#fileNumber.set(next)
      this.#fileNumberRbv.set(next)
    }
    const last = this.#last
    if (last === undefined) {
      this.#status(1, 'ERROR, must collect an array to get dimensions first')
      return false
    }
    const swmr = this.#swmrModeRbv.number === 1
    const layout = {
      width: last.width,
      height: last.height,
      dataType: last.info.dataType,
      framesPerChunk: Math.max(this.#numFramesChunksRbv.number, 1),
      swmr
    }
    try {
      const file: SimHdfTarget = openSimHdfFile(name, layout, (message) => { this.#openFailedLater(file, message) })
      this.#file = file
    } catch (err) {
      this.#status(1, `Error opening file ${name}: ${errorReason(err)}`)
      return false
    }
    this.#swmrActive.set(swmr ? 1 : 0)
    return true
  }

  /** A file opened before h5wasm was loaded could not be created once it was. */
  #openFailedLater (file: SimHdfTarget, message: string): void {
    this.#status(1, `Error opening file ${file.path}: ${message}`)
    if (this.#file !== file) return
    this.#file = undefined
    this.#swmrActive.set(0)
    if (this.#capturing) this.#stopStream()
  }

  /** Append one frame; false (WriteStatus error, WriteMessage why) if HDF5 refused it. */
  #append (file: SimHdfTarget, frame: ReceivedFrame): boolean {
    try {
      file.append(frame.pixels, frameAttributes(frame.info))
      return true
    } catch (err) {
      this.#status(1, `Error writing file ${file.path}: ${errorReason(err)}`)
      return false
    }
  }

  /** Flush every NumFramesFlush frames, and at most simFlushPeriodMs after any frame not yet flushed. */
  #flushSoon (file: SimHdfTarget): void {
    const every = this.#numFramesFlushRbv.number
    if (every > 0 && file.frames % every === 0) {
      this.#flush()
      return
    }
    this.#cancelFlush ??= this.#clock.setTimer(() => {
      this.#cancelFlush = undefined
      this.#flush()
    }, defaults.iocWriter.simFlushPeriodMs)
  }

  #flush (): void {
    this.#cancelFlush?.()
    this.#cancelFlush = undefined
    const file = this.#file
    if (file === undefined) return
    try {
      file.flush()
    } catch (err) {
      this.#status(1, `Error flushing file ${file.path}: ${errorReason(err)}`)
    }
  }

  /** Close the open file, if any; a failure goes to WriteStatus and WriteMessage. */
  #closeFile (): void {
    this.#cancelFlush?.()
    this.#cancelFlush = undefined
    const file = this.#file
    if (file === undefined) return
    this.#file = undefined
    this.#swmrActive.set(0)
    try {
      file.close()
    } catch (err) {
      this.#status(1, `Error closing file ${file.path}: ${errorReason(err)}`)
    }
  }

  #nextFileName (): string {
    return formatFileTemplate(this.#fileTemplateRbv.text, this.#filePathRbv.text, this.#fileNameRbv.text, this.#fileNumberRbv.number)
  }

  #stopStream (): void {
    this.#closeFile()
    this.#writeFileRbv.set(0)
    this.#endCapture()
  }

  #endCapture (): void {
    this.#capturing = false
    this.#captureRbv.set(0)
    this.#capture.set(0)
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w.resolve()
  }

  /** WriteFile=1: Single mode writes the last array, Capture mode the buffered ones. */
  #writeNow (): void {
    const mode = this.#fileWriteModeRbv.text
    if (mode === 'Single') {
      const last = this.#last
      if (last === undefined) return
      // The pool frame may carry a later frame's UniqueId by now: write it as it was received.
      const pixels = last.pixels.slice()
      stampUniqueId(pixels, last.info.uniqueId)
      this.#writeSingle({ ...last, pixels })
    } else if (mode === 'Capture') {
      if (this.#buffer.length === 0) this.#status(1, 'ERROR, no capture buffer present')
      else this.#writeBuffered()
    }
  }

  /** One file holding `frame`. */
  #writeSingle (frame: ReceivedFrame): void {
    this.#writeFileRbv.set(1)
    this.#numCaptured.set(1)
    if (this.#openFile()) {
      if (this.#append(this.#file as SimHdfTarget, frame)) this.#countSaved()
      this.#closeFile()
    }
    this.#writeFileRbv.set(0)
  }

  /** One file holding the capture buffer; the buffer is freed. */
  #writeBuffered (): void {
    this.#writeFileRbv.set(1)
    if (this.#openFile()) {
      const file = this.#file as SimHdfTarget
      for (const frame of this.#buffer) if (!this.#append(file, frame)) break
      this.#closeFile()
    }
    this.#buffer = []
    this.#numCaptured.set(0)
    this.#writeFileRbv.set(0)
  }

  #status (status: number, message: string): void {
    this.#writeStatus.set(status)
    this.#writeMessage.set(message)
  }

  /**
   * ADCore's checkPath: FilePath_RBV gets a trailing '/', FilePathExists_RBV whether it is a directory. After a write
   * of FilePath, a missing directory is created as CreateDirectory says (0: never; N > 0: all parts after the first
   * N; N < 0: the last |N| parts).
   */
  #checkPath (written: boolean): boolean {
    const raw = written ? this.#filePath.text : this.#filePathRbv.text
    if (raw === '') return false
    const trimmed = raw.length > 1 && raw.endsWith('/') ? raw.slice(0, -1) : raw
    let exists = isDirectory(trimmed)
    if (!exists && written) {
      const depth = this.#createDirectory.number
      if (depth !== 0) createPath(trimmed, depth)
      exists = isDirectory(trimmed)
    }
    this.#filePathRbv.set(trimmed.endsWith('/') ? trimmed : `${trimmed}/`)
    this.#filePathExists.set(exists ? 1 : 0)
    return exists
  }
}

function isDirectory (path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

/** ADCore's createFilePath: create the parts of `path` from index `depth` on (negative: count from the end). */
function createPath (path: string, depth: number): void {
  const parts = path.split('/').filter((p) => p !== '')
  let first = depth < 0 ? Math.max(parts.length + depth, 1) : depth
  if (first < 1) first = 1
  let dir = path.startsWith('/') ? '/' : ''
  for (let i = 0; i < parts.length; i++) {
    dir += `${parts[i] as string}/`
    if (i >= first) {
      try {
        mkdirSync(dir)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return
      }
    }
  }
}

/** Write `id` into the first 4 bytes of a frame (little-endian uint32). */
function stampUniqueId (frame: Uint8Array | Int16Array | Uint16Array, id: number): void {
  if (frame instanceof Uint8Array) {
    frame[0] = id & 0xff
    frame[1] = (id >>> 8) & 0xff
    frame[2] = (id >>> 16) & 0xff
    frame[3] = (id >>> 24) & 0xff
  } else {
    frame[0] = (id << 16) >> 16
    frame[1] = id >> 16
  }
}

/**
 * The images of a pool: a diagonal gradient with a bright round spot whose centre steps along the width with the
 * image's number k. UInt8 uses 0..255; UInt16 holds 12-bit values (0..4095, a Manta's Mono12). Pixel (x, y) is
 * round(background·(x + y)/(width + height) + spot), cast to the waveform's element type. The gradient depends only on
 * x + y, so each row is a slice of one precomputed line, and only the spot's bounding box is computed per pixel: a
 * 2048 x 2048 image takes a few milliseconds.
 */
class FramePainter {
  readonly #width: number
  readonly #height: number
  readonly #base: DbrBase
  readonly #full: number
  readonly #background: number
  /** The gradient's value for each x + y, in the element type. */
  readonly #line: Uint8Array | Int16Array

  constructor (width: number, height: number, dataType: CameraDataType, base: DbrBase) {
    this.#width = width
    this.#height = height
    this.#base = base
    this.#full = dataType === 'UInt8' ? 255 : 4095
    this.#background = this.#full / 4
    const n = width + height - 1
    this.#line = base === DbrBase.CHAR ? new Uint8Array(n) : new Int16Array(n)
    for (let s = 0; s < n; s++) this.#line[s] = this.#cast(Math.round(this.#background * s / (width + height)))
  }

  frame (k: number): DbrValue {
    const width = this.#width
    const height = this.#height
    const char = this.#base === DbrBase.CHAR
    const out = char ? new Uint8Array(width * height) : new Int16Array(width * height)
    const line = this.#line
    for (let y = 0; y < height; y++) out.set(line.subarray(y, y + width), y * width)
    const background = this.#background
    const peak = this.#full - background
    const cx = width * (k + 1) / (FRAME_POOL + 1)
    const cy = height / 2 + height / 4 * Math.sin(2 * Math.PI * k / FRAME_POOL)
    const r = Math.max(Math.min(width, height) / 12, 1)
    const r2 = r * r
    // The spot is where d2 < 4, inside |x - cx| < 2r and |y - cy| < 2r; a pixel of margin on each side.
    const x0 = Math.max(Math.floor(cx - 2 * r) - 1, 0)
    const x1 = Math.min(Math.ceil(cx + 2 * r) + 1, width - 1)
    const y0 = Math.max(Math.floor(cy - 2 * r) - 1, 0)
    const y1 = Math.min(Math.ceil(cy + 2 * r) + 1, height - 1)
    const dx2 = new Float64Array(x1 - x0 + 1)
    for (let x = x0; x <= x1; x++) dx2[x - x0] = (x - cx) ** 2
    for (let y = y0; y <= y1; y++) {
      const dy2 = (y - cy) ** 2
      for (let x = x0; x <= x1; x++) {
        const d2 = ((dx2[x - x0] as number) + dy2) / r2
        if (d2 >= 4) continue
        const v = Math.round(background * (x + y) / (width + height) + peak * Math.exp(-d2))
        out[y * width + x] = char ? v & 0xff : v
      }
    }
    return out
  }

  #cast (v: number): number {
    return this.#base === DbrBase.CHAR ? v & 0xff : v
  }
}
