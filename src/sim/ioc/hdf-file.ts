/**
 * The files the simulated NDFileHDF5 plugin (camera.ts, `HDF1:`) writes, with h5wasm, in the layout of ADCore's
 * default layout XML (NDFileHDF5LayoutXML.cpp):
 *
 *   /entry                                  NX_class NXentry
 *   /entry/instrument                       NX_class NXinstrument
 *   /entry/instrument/detector              NX_class NXdetector
 *   /entry/instrument/detector/data         (N, H, W) uint8 | uint16, chunk (framesPerChunk, H, W), attribute signal=1
 *   /entry/instrument/NDAttributes          NX_class NXcollection
 *     NDArrayUniqueId int32, NDArrayTimeStamp float64, NDArrayEpicsTSSec uint32, NDArrayEpicsTSnSec uint32   (N,)
 *   /entry/data                             NX_class NXdata
 *   /entry/data/data                        hard link to /entry/instrument/detector/data
 *
 * Each frame is written when it arrives (resize + write_slice: about 0.6 ms for a 728 x 544 uint8 frame in SWMR mode,
 * 1.5 ms without, on this machine); the per-frame attributes are kept in memory and written at each flush, because
 * every h5wasm call costs ~0.2 ms. After a flush a reader sees the same number of frames in every dataset.
 *
 * h5wasm loads asynchronously (~150 ms) while the simulated IOC is built synchronously. Loading starts when this
 * module is imported. A file opened before it finished is a `pending` file: frames are copied into memory and
 * written, in order, once h5wasm is ready; a failure then reaches the plugin through `onError`.
 */
import h5wasm from 'h5wasm/node'
import type { Dataset, File as H5File } from 'h5wasm/node'

/** What the plugin writes per frame (the NDArray's default attributes, NDFileHDF5::addDefaultAttributes). */
export interface SimFrameInfo {
  readonly uniqueId: number
  /** NDArray timeStamp: seconds since the EPICS epoch. */
  readonly timeStamp: number
  readonly epicsSec: number
  readonly epicsNsec: number
}

export interface SimHdfLayout {
  readonly width: number
  readonly height: number
  readonly dataType: 'UInt8' | 'UInt16'
  /** Frames per HDF5 chunk (NumFramesChunks, at least 1). */
  readonly framesPerChunk: number
  /** SWMR write (libver v110 + start_swmr_write), as SWMRMode=On asks. */
  readonly swmr: boolean
}

/** The pixels of one frame: a CHAR waveform's bytes or a SHORT waveform's values (written as uint16). */
export type SimFramePixels = Uint8Array | Int16Array | Uint16Array

/** The datasets of NDAttributes and their element types (ADCore's NDAttrInt32, Float64, UInt32, UInt32). */
export const ND_DEFAULT_ATTRIBUTES = [
  { name: 'NDArrayUniqueId', dtype: '<i', description: 'The unique ID of the NDArray' },
  { name: 'NDArrayTimeStamp', dtype: '<d', description: 'The timestamp of the NDArray as float64' },
  { name: 'NDArrayEpicsTSSec', dtype: '<I', description: 'The NDArray EPICS timestamp seconds past epoch' },
  { name: 'NDArrayEpicsTSnSec', dtype: '<I', description: 'The NDArray EPICS timestamp nanoseconds' }
] as const

export const SIM_HDF_DATASET = '/entry/data/data'
export const SIM_HDF_DETECTOR_DATASET = '/entry/instrument/detector/data'
export const SIM_HDF_ATTRIBUTES_GROUP = '/entry/instrument/NDAttributes'
/** Elements per chunk of the NDAttributes datasets (what ADCore uses, and ophyd-async declares). */
export const ND_ATTRIBUTE_CHUNK = 16384

let loaded = false
let loadError: unknown
const loading: Promise<void> = h5wasm.ready.then(() => { loaded = true }, (err: unknown) => { loadError = err })

/** Resolves once h5wasm is loaded (it starts loading when this module is imported); rejects if it failed to load. */
export async function simHdf5Ready (): Promise<void> {
  await loading
  if (loadError !== undefined) throw loadError instanceof Error ? loadError : new Error(String(loadError))
}

/** Whether h5wasm is loaded: a file can be opened and written at once. */
export function simHdf5Loaded (): boolean {
  return loaded
}

function reason (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** A file being written: the real one, or one waiting for h5wasm. */
export interface SimHdfTarget {
  readonly path: string
  /** Frames appended (written, or queued while pending). */
  readonly frames: number
  readonly pending: boolean
  /** Append one frame; throws an Error with the reason if HDF5 refuses it. The pixels are not kept. */
  append (pixels: SimFramePixels, info: SimFrameInfo): void
  /** Write the buffered attributes and flush: a reader sees every frame appended so far. */
  flush (): void
  /** Flush and close; idempotent. Throws the first failure (the file is closed anyway). */
  close (): void
}

/**
 * Open (truncate) `path` for frames of `layout`. Throws an Error with the reason when HDF5 cannot create it. Before
 * h5wasm is loaded this returns a pending target; `onError` then gets a failure that happens once it is.
 */
export function openSimHdfFile (path: string, layout: SimHdfLayout, onError: (message: string) => void): SimHdfTarget {
  if (loaded) return SimHdfFile.create(path, layout)
  return new PendingHdfFile(path, layout, onError)
}

/** An open HDF5 file in ADCore's default layout. */
export class SimHdfFile implements SimHdfTarget {
  readonly path: string
  readonly pending = false
  #file: H5File | undefined
  readonly #data: Dataset
  readonly #attrs: Dataset[]
  readonly #frameShape: [number, number]
  readonly #u16: boolean
  /** Per-frame attribute values not yet written, one column per ND_DEFAULT_ATTRIBUTES entry. */
  #ids: number[] = []
  #stamps: number[] = []
  #secs: number[] = []
  #nsecs: number[] = []
  #frames = 0
  #attrsWritten = 0

  private constructor (path: string, file: H5File, data: Dataset, attrs: Dataset[], layout: SimHdfLayout) {
    this.path = path
    this.#file = file
    this.#data = data
    this.#attrs = attrs
    this.#frameShape = [layout.height, layout.width]
    this.#u16 = layout.dataType === 'UInt16'
  }

  /** Create the file and its groups and datasets (empty), start SWMR if asked, flush. Throws an Error with the reason. */
  static create (path: string, layout: SimHdfLayout): SimHdfFile {
    if (!loaded) throw new Error('h5wasm is not loaded yet')
    let file: H5File | undefined
    let step = 'create the file'
    try {
      file = new h5wasm.File(path, 'w', layout.swmr ? { libver: 'v110' } : undefined)
      if (file.file_id < 0n) {
        file = undefined
        throw new Error('HDF5 could not create it (is the directory writable?)')
      }
      step = 'create the groups'
      const nx = (group: string, cls: string): void => { (file as H5File).create_group(group).create_attribute('NX_class', cls) }
      nx('entry', 'NXentry')
      nx('entry/instrument', 'NXinstrument')
      nx('entry/instrument/detector', 'NXdetector')
      nx('entry/instrument/NDAttributes', 'NXcollection')
      nx('entry/data', 'NXdata')
      step = `create ${SIM_HDF_DETECTOR_DATASET}`
      const { width, height } = layout
      const u16 = layout.dataType === 'UInt16'
      const data = file.create_dataset({
        name: SIM_HDF_DETECTOR_DATASET.slice(1),
        data: u16 ? new Uint16Array(0) : new Uint8Array(0),
        shape: [0, height, width],
        dtype: u16 ? '<H' : '<B',
        maxshape: [null, height, width],
        chunks: [Math.max(1, layout.framesPerChunk), height, width]
      }) as Dataset | null
      if (data === null) throw new Error('h5wasm returned no dataset')
      data.create_attribute('signal', 1, null, '<i')
      step = `link ${SIM_HDF_DATASET}`
      file.create_hard_link(SIM_HDF_DETECTOR_DATASET, SIM_HDF_DATASET)
      const attrs: Dataset[] = []
      for (const a of ND_DEFAULT_ATTRIBUTES) {
        step = `create ${SIM_HDF_ATTRIBUTES_GROUP}/${a.name}`
        const empty = a.dtype === '<i' ? new Int32Array(0) : a.dtype === '<d' ? new Float64Array(0) : new Uint32Array(0)
        const ds = file.create_dataset({
          name: `${SIM_HDF_ATTRIBUTES_GROUP.slice(1)}/${a.name}`, data: empty, shape: [0], dtype: a.dtype, maxshape: [null], chunks: [ND_ATTRIBUTE_CHUNK]
        }) as Dataset | null
        if (ds === null) throw new Error('h5wasm returned no dataset')
        ds.create_attribute('NDAttrName', a.name)
        ds.create_attribute('NDAttrDescription', a.description)
        ds.create_attribute('NDAttrSourceType', 'NDAttrSourceDriver')
        ds.create_attribute('NDAttrSource', 'Driver')
        attrs.push(ds)
      }
      if (layout.swmr) {
        step = 'start SWMR write'
        const status = file.start_swmr_write()
        if (status < 0) throw new Error(`H5Fstart_swmr_write returned ${status}`)
      }
      step = 'flush'
      file.flush()
      return new SimHdfFile(path, file, data, attrs, layout)
    } catch (err) {
      try { file?.close() } catch { /* the first error is the one to report */ }
      throw new Error(`${step}: ${reason(err)}`)
    }
  }

  get frames (): number { return this.#frames }

  append (pixels: SimFramePixels, info: SimFrameInfo): void {
    const file = this.#file
    if (file === undefined) throw new Error('the file is closed')
    const n = this.#frames
    const [h, w] = this.#frameShape
    if (pixels.length !== h * w) throw new Error(`frame ${info.uniqueId} has ${pixels.length} pixels, the dataset ${h} x ${w}`)
    // A SHORT waveform's values are the uint16 pixels' bits.
    const values = this.#u16 && pixels instanceof Int16Array ? new Uint16Array(pixels.buffer, pixels.byteOffset, pixels.length) : pixels
    const status = this.#data.resize([n + 1, h, w])
    if (status < 0) throw new Error(`resize of ${SIM_HDF_DETECTOR_DATASET} to ${n + 1} frames returned ${status}`)
    this.#data.write_slice([[n, n + 1], [0, h], [0, w]], values)
    this.#frames = n + 1
    this.#ids.push(info.uniqueId)
    this.#stamps.push(info.timeStamp)
    this.#secs.push(info.epicsSec)
    this.#nsecs.push(info.epicsNsec)
  }

  flush (): void {
    const file = this.#file
    if (file === undefined) return
    this.#writeAttributes()
    file.flush()
  }

  close (): void {
    const file = this.#file
    if (file === undefined) return
    this.#file = undefined
    let first: unknown
    try { this.#writeAttributes() } catch (err) { first = err }
    try { file.close() } catch (err) { first ??= err }
    if (first !== undefined) throw first instanceof Error ? first : new Error(String(first))
  }

  #writeAttributes (): void {
    const from = this.#attrsWritten
    const to = this.#frames
    if (to === from) return
    const columns = [Int32Array.from(this.#ids), Float64Array.from(this.#stamps), Uint32Array.from(this.#secs), Uint32Array.from(this.#nsecs)]
    for (let i = 0; i < this.#attrs.length; i++) {
      const ds = this.#attrs[i] as Dataset
      const status = ds.resize([to])
      if (status < 0) throw new Error(`resize of ${ds.path} to ${to} returned ${status}`)
      ds.write_slice([[from, to]], columns[i])
    }
    this.#attrsWritten = to
    this.#ids = []
    this.#stamps = []
    this.#secs = []
    this.#nsecs = []
  }
}

/** A file opened before h5wasm was loaded: frames are copied and written once it is. */
class PendingHdfFile implements SimHdfTarget {
  readonly path: string
  #target: SimHdfTarget = this
  #queue: Array<{ pixels: SimFramePixels, info: SimFrameInfo }> = []
  #failed: string | undefined
  #closeAsked = false
  #flushAsked = false

  constructor (path: string, layout: SimHdfLayout, onError: (message: string) => void) {
    this.path = path
    simHdf5Ready().then(() => {
      const file = SimHdfFile.create(path, layout)
      this.#target = file
      for (const q of this.#queue) file.append(q.pixels, q.info)
      this.#queue = []
      if (this.#closeAsked) file.close()
      else if (this.#flushAsked) file.flush()
    }).catch((err: unknown) => {
      this.#failed = reason(err)
      this.#queue = []
      onError(this.#failed)
    })
  }

  get pending (): boolean { return this.#target === this }
  get frames (): number { return this.#target === this ? this.#queue.length : this.#target.frames }

  append (pixels: SimFramePixels, info: SimFrameInfo): void {
    if (this.#failed !== undefined) throw new Error(this.#failed)
    if (this.#target !== this) {
      this.#target.append(pixels, info)
      return
    }
    this.#queue.push({ pixels: pixels.slice(), info })
  }

  flush (): void {
    if (this.#target !== this) this.#target.flush()
    else this.#flushAsked = true
  }

  close (): void {
    if (this.#target !== this) this.#target.close()
    else this.#closeAsked = true
  }
}
