/**
 * Writes one camera's frames into one HDF5 file with h5wasm, laid out as frame-layout.ts describes.
 *
 * Each frame is one resize + write_slice of the (N, H, W) dataset, straight from the frame ring's slot (a typed
 * view of the camera's pixel type, so h5wasm copies it without converting). The per-frame attributes are small and
 * each h5wasm call costs ~0.12 ms, so they are buffered and written at every flush and at close: a reader sees the
 * frames and their attributes in step at every flush. The file is SWMR (libver v110 + start_swmr_write), like the
 * PandA files, so h5py can follow it live, and a writer that dies leaves it recoverable (recover.ts).
 *
 * Disk full. h5wasm does not throw when HDF5 fails to write a chunk (the failure surfaces in the H5Dclose it does
 * after each write_slice and is only printed), and a file whose writes failed is left unreadable (its superblock
 * names an end of file past the real one). So the writer never lets it come to that: before each frame it checks
 * the free space (statfs) and stops with FLY_ERR_DISK_FULL while a reserve for the flush and close remains; after
 * each write it checks that the file grew by at least the frame, and treats a short file (EFBIG, EDQUOT, a
 * filesystem that filled between the check and the write) as disk full too.
 */
import { fstatSync, openSync, closeSync, statfsSync } from 'node:fs'
import { dirname } from 'node:path'
import h5wasm from 'h5wasm/node'
import type { Dataset, File as H5File, Group } from 'h5wasm/node'
import { ErrorCode, FlyScanError } from '../errors.js'
import { frameFileLayout, frameBytes, type FrameFileLayout, type FrameShape } from './frame-layout.js'

/** What the writer stores for each frame besides its pixels. */
export interface FrameInfo {
  readonly uniqueId: number
  /** EPICS timestamp of the frame (seconds past 1990-01-01 UTC, nanoseconds). */
  readonly epicsSec: number
  readonly epicsNsec: number
  /** When the monitor update reached the camera worker (nowNs(), process-monotonic ns). */
  readonly arrivalNs: number
}

export interface FrameHdfWriterOptions {
  /** Free bytes to keep beyond the next frame (default 4 MiB); see the module comment. */
  readonly diskReserveBytes?: number
  /** Free bytes on the file's file system (default: statfs). Tests inject a small disk. */
  readonly freeBytes?: (dir: string) => number
}

/** How the file was finished, for close(). */
export interface FrameCloseInfo {
  /** Why the scan or the capture failed, if it did; written as the `error` attribute of /entry. */
  readonly error?: unknown
}

const ATTR_BUFFER_FRAMES = 1024

function errorText (err: unknown): string {
  if (err instanceof FlyScanError) return `${err.code}: ${err.message}`
  if (err instanceof Error) return err.message
  return String(err)
}

function statfsFree (dir: string): number {
  const s = statfsSync(dir)
  return Number(s.bavail) * Number(s.bsize)
}

/** Typed view of `bytes` in the pixel type whose h5wasm dtype is `h5` (no copy; the slot is 64-byte aligned). */
function pixelView (bytes: Uint8Array, h5: string): ArrayBufferView {
  const { buffer, byteOffset, byteLength } = bytes
  switch (h5) {
    case '<B': return bytes
    case '<b': return new Int8Array(buffer, byteOffset, byteLength)
    case '<H': return new Uint16Array(buffer, byteOffset, byteLength >> 1)
    case '<h': return new Int16Array(buffer, byteOffset, byteLength >> 1)
    case '<I': return new Uint32Array(buffer, byteOffset, byteLength >> 2)
    case '<i': return new Int32Array(buffer, byteOffset, byteLength >> 2)
    case '<f': return new Float32Array(buffer, byteOffset, byteLength >> 2)
    default: return new Float64Array(buffer, byteOffset, byteLength >> 3)
  }
}

/** Growable per-frame columns, written to their datasets at each flush. */
class AttributeColumns {
  uniqueId = new Int32Array(ATTR_BUFFER_FRAMES)
  timeStamp = new Float64Array(ATTR_BUFFER_FRAMES)
  sec = new Uint32Array(ATTR_BUFFER_FRAMES)
  nsec = new Uint32Array(ATTR_BUFFER_FRAMES)
  arrival = new Float64Array(ATTR_BUFFER_FRAMES)
  length = 0

  push (info: FrameInfo): void {
    if (this.length === this.uniqueId.length) this.#grow()
    const i = this.length++
    this.uniqueId[i] = info.uniqueId
    this.timeStamp[i] = info.epicsSec + info.epicsNsec / 1e9
    this.sec[i] = info.epicsSec
    this.nsec[i] = info.epicsNsec
    this.arrival[i] = info.arrivalNs
  }

  clear (): void { this.length = 0 }

  #grow (): void {
    const n = this.uniqueId.length * 2
    const grow = <T extends Int32Array | Float64Array | Uint32Array>(a: T, make: (n: number) => T): T => {
      const b = make(n)
      b.set(a)
      return b
    }
    this.uniqueId = grow(this.uniqueId, (k) => new Int32Array(k))
    this.timeStamp = grow(this.timeStamp, (k) => new Float64Array(k))
    this.sec = grow(this.sec, (k) => new Uint32Array(k))
    this.nsec = grow(this.nsec, (k) => new Uint32Array(k))
    this.arrival = grow(this.arrival, (k) => new Float64Array(k))
  }
}

export class FrameHdfWriter {
  readonly path: string
  readonly shape: FrameShape
  readonly layout: FrameFileLayout
  readonly frameBytes: number
  #file: H5File | undefined
  readonly #data: Dataset
  readonly #attrs: readonly [Dataset, Dataset, Dataset, Dataset, Dataset]
  readonly #pending = new AttributeColumns()
  readonly #fd: number
  readonly #dir: string
  readonly #reserve: number
  readonly #freeBytes: (dir: string) => number
  /** Frames in the data dataset. */
  #written = 0
  /** Frames whose attributes are in their datasets (== #written after a flush). */
  #attrsWritten = 0
  #flushed = 0
  /** File size after the last flush: each frame write must grow it by at least the frame's bytes, or the write failed. */
  #baseSize = 0
  #framesSinceBase = 0
  #failed: FlyScanError | undefined

  private constructor (path: string, shape: FrameShape, layout: FrameFileLayout, file: H5File, data: Dataset,
    attrs: readonly [Dataset, Dataset, Dataset, Dataset, Dataset], options: FrameHdfWriterOptions) {
    this.path = path
    this.shape = shape
    this.layout = layout
    this.frameBytes = frameBytes(shape)
    this.#file = file
    this.#data = data
    this.#attrs = attrs
    this.#dir = dirname(path)
    this.#reserve = options.diskReserveBytes ?? 4 * 1024 * 1024
    this.#freeBytes = options.freeBytes ?? statfsFree
    // A read-only descriptor of our own, to watch the file's size (HDF5's sec2 driver keeps its own).
    this.#fd = openSync(path, 'r')
    this.#baseSize = fstatSync(this.#fd).size
  }

  /**
   * Create (truncate) `path` with the groups, the empty (0, H, W) frame dataset, its /entry/data/data link and the
   * per-frame attribute datasets; switch to SWMR writing and flush. Throws FLY_ERR_HDF5 naming the file and step,
   * FLY_ERR_BAD_INPUT for a pixel type tst-fly does not write.
   */
  static async create (path: string, shape: FrameShape, options: FrameHdfWriterOptions = {}): Promise<FrameHdfWriter> {
    if (frameBytes(shape) === 0) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `camera HDF5 file ${path}: cannot write frames of ${shape.width} x ${shape.height} ${shape.dtype}`,
        { details: { file: path, width: shape.width, height: shape.height, dtype: shape.dtype } })
    }
    const layout = frameFileLayout(shape)
    await h5wasm.ready
    let file: H5File | undefined
    let step = 'open'
    try {
      file = new h5wasm.File(path, 'w', { libver: 'v110' })
      if (file.file_id < 0n) {
        file = undefined
        throw new Error('HDF5 could not create the file (does its directory exist and is it writable?)')
      }
      const groups = new Map<string, Group>([['/', file]])
      for (const g of layout.groups) {
        step = `create group ${g.path}`
        const parentPath = g.path.slice(0, g.path.lastIndexOf('/')) || '/'
        const parent = groups.get(parentPath)
        if (parent === undefined) throw new Error(`parent group ${parentPath} not created`)
        const group = parent.create_group(g.path.slice(g.path.lastIndexOf('/') + 1))
        group.create_attribute('NX_class', g.nxClass)
        groups.set(g.path, group)
      }
      const create = (path: string, args: { data: Int32Array | Float64Array | Uint32Array | Uint8Array, shape: number[], dtype: string, maxshape: Array<number | null>, chunks: number[] }): Dataset => {
        step = `create dataset ${path}`
        const at = path.lastIndexOf('/')
        const group = groups.get(path.slice(0, at) || '/')
        if (group === undefined) throw new Error(`group of ${path} not created`)
        const ds = group.create_dataset({ name: path.slice(at + 1), ...args }) as Dataset | null
        if (ds === null) throw new Error('h5wasm returned no dataset')
        return ds
      }
      const d = layout.data
      const data = create(d.path, { data: new Uint8Array(0), shape: [...d.shape], dtype: d.dtype.h5, maxshape: [...d.maxshape], chunks: [...d.chunks] })
      data.create_attribute('NX_class', 'SDS')
      data.create_attribute('signal', new Int32Array([1]), [], '<i')
      for (const link of layout.links) {
        step = `link ${link.path} to ${link.target}`
        const at = link.path.lastIndexOf('/')
        const group = groups.get(link.path.slice(0, at) || '/')
        if (group === undefined) throw new Error(`group of ${link.path} not created`)
        if (group.create_hard_link(link.target, link.path.slice(at + 1)) < 0) throw new Error('H5Lcreate_hard failed')
      }
      const a = layout.attributes
      const column = (l: typeof a.uniqueId): Dataset => {
        const empty = l.h5 === '<i' ? new Int32Array(0) : l.h5 === '<I' ? new Uint32Array(0) : new Float64Array(0)
        const ds = create(l.path, { data: empty, shape: [0], dtype: l.h5, maxshape: [null], chunks: [ATTR_BUFFER_FRAMES] })
        ds.create_attribute('description', l.description)
        return ds
      }
      const attrs = [column(a.uniqueId), column(a.timeStamp), column(a.epicsTsSec), column(a.epicsTsNsec), column(a.arrivalNs)] as const
      step = 'write file attributes'
      file.create_attribute('detector_shape', new Int32Array([shape.height, shape.width]), null, '<i')
      file.create_attribute('dtype', shape.dtype)
      step = 'start SWMR write'
      const status = file.start_swmr_write()
      if (status < 0) throw new Error(`H5Fstart_swmr_write returned ${status}`)
      step = 'flush'
      file.flush()
      return new FrameHdfWriter(path, shape, layout, file, data, attrs, options)
    } catch (err) {
      try { file?.close() } catch { /* the first error is the one to report */ }
      throw new FlyScanError(ErrorCode.HDF5, `camera HDF5 file ${path}: ${step} failed: ${errorText(err)}`,
        { details: { file: path, step }, cause: err })
    }
  }

  /** Frames in the data dataset (readers see them, with their attributes, after the next flush). */
  get framesWritten (): number { return this.#written }
  /** Frames written and flushed: what a reader or a crash would find. */
  get framesFlushed (): number { return this.#flushed }
  get bytesWritten (): number { return this.#written * this.frameBytes }
  get closed (): boolean { return this.#file === undefined }
  /** The error that stopped writing, if one did. */
  get failure (): FlyScanError | undefined { return this.#failed }

  /**
   * Append one frame (`pixels`: exactly frameBytes bytes, e.g. a ring slot's payload; not kept). Throws FLY_ERR_DISK_FULL
   * when the file system cannot take it (the frame is not written; the file stays as it was), FLY_ERR_HDF5 on
   * other failures, FLY_ERR_BAD_INPUT for a frame of another size.
   */
  append (pixels: Uint8Array, info: FrameInfo): void {
    this.#check('append')
    if (pixels.byteLength !== this.frameBytes) {
      throw new FlyScanError(ErrorCode.BAD_INPUT,
        `camera HDF5 file ${this.path}: a frame of ${pixels.byteLength} bytes given, frames of ${this.shape.width} x ${this.shape.height} ${this.shape.dtype} hold ${this.frameBytes}`,
        { details: { file: this.path, bytes: pixels.byteLength, frameBytes: this.frameBytes } })
    }
    const free = this.#freeBytes(this.#dir)
    if (free < this.frameBytes + this.#reserve) {
      throw this.#diskFull(`${free} bytes free, a frame needs ${this.frameBytes} plus ${this.#reserve} kept for closing the file`)
    }
    const from = this.#written
    const { height, width } = this.shape
    this.#h5(`write frame ${from}`, () => {
      const status = this.#data.resize([from + 1, height, width])
      if (status < 0) throw new Error(`resize to ${from + 1} frames returned ${status}`)
      this.#data.write_slice([[from, from + 1], [0, height], [0, width]], pixelView(pixels, this.layout.data.dtype.h5))
    })
    // h5wasm does not report a chunk write that failed: the file must have grown by at least the frame.
    const size = fstatSync(this.#fd).size
    if (size < this.#baseSize + (this.#framesSinceBase + 1) * this.frameBytes) {
      throw this.#diskFull(`the file is ${size} bytes after writing frame ${from}, short of the frame's ${this.frameBytes} bytes (file size limit, quota or a full file system)`)
    }
    this.#framesSinceBase++
    this.#written = from + 1
    this.#pending.push(info)
  }

  /** Write the buffered attributes and flush: readers see every frame appended so far. */
  flush (): void {
    this.#check('flush')
    this.#writeAttributes()
    this.#h5('flush', () => (this.#file as H5File).flush())
    this.#flushed = this.#written
    this.#baseSize = fstatSync(this.#fd).size
    this.#framesSinceBase = 0
  }

  /**
   * Write what is buffered, record how the capture ended (attributes `frames_written` and, on failure, `error` on
   * /entry) and close. Idempotent. After a disk-full failure the frames already written are kept. If closing fails
   * the file is still released and the error thrown.
   */
  close (info: FrameCloseInfo = {}): void {
    const file = this.#file
    if (file === undefined) return
    let first: unknown
    const attempt = (fn: () => void): void => {
      try { fn() } catch (err) { first ??= err }
    }
    attempt(() => { this.#writeAttributes() })
    attempt(() => this.#h5('write end attributes', () => {
      const entry = file.get('/entry') as Group
      entry.create_attribute('frames_written', new BigInt64Array([BigInt(this.#attrsWritten)]), [], '<q')
      const error = info.error ?? this.#failed
      if (error !== undefined) entry.create_attribute('error', errorText(error))
    }))
    attempt(() => this.#h5('close', () => { file.close() }))
    this.#file = undefined
    try { closeSync(this.#fd) } catch { /* already closed */ }
    if (first === undefined) this.#flushed = this.#written
    if (first !== undefined) throw first
  }

  #writeAttributes (): void {
    const p = this.#pending
    if (p.length === 0) return
    const from = this.#attrsWritten
    const to = from + p.length
    const columns = [p.uniqueId, p.timeStamp, p.sec, p.nsec, p.arrival] as const
    for (let i = 0; i < columns.length; i++) {
      const ds = this.#attrs[i] as Dataset
      const col = columns[i] as Int32Array | Float64Array | Uint32Array
      this.#h5(`write frames ${from}..${to} of ${ds.path}`, () => {
        const status = ds.resize([to])
        if (status < 0) throw new Error(`resize to ${to} returned ${status}`)
        ds.write_slice([[from, to]], col.subarray(0, p.length))
      })
    }
    this.#attrsWritten = to
    p.clear()
  }

  #diskFull (why: string): FlyScanError {
    const e = new FlyScanError(ErrorCode.DISK_FULL,
      `camera HDF5 file ${this.path}: disk full after ${this.#written} frames on disk: ${why}`,
      { details: { file: this.path, framesWritten: this.#written, frameBytes: this.frameBytes } })
    this.#failed ??= e
    return e
  }

  #check (op: string): void {
    if (this.#file === undefined) {
      throw new FlyScanError(ErrorCode.HDF5, `camera HDF5 file ${this.path}: ${op} after close`, { details: { file: this.path, op } })
    }
    if (this.#failed !== undefined) {
      throw new FlyScanError(this.#failed.code, `camera HDF5 file ${this.path}: ${op} after an earlier failure: ${this.#failed.message}`,
        { details: { file: this.path, op }, cause: this.#failed })
    }
  }

  #h5<T>(step: string, fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      const e = err instanceof FlyScanError
        ? err
        : new FlyScanError(ErrorCode.HDF5, `camera HDF5 file ${this.path}: ${step} failed: ${errorText(err)}`,
          { details: { file: this.path, step, framesWritten: this.#written }, cause: err })
      this.#failed ??= e
      throw e
    }
  }
}
