/**
 * Writes one PandA acquisition into one HDF5 file with h5wasm, laid out as layout.ts describes.
 *
 * Rows are decoded into per-dataset block buffers and written one block at a time (resize + write_slice per
 * dataset), because every h5wasm call costs ~0.12 ms. The file is SWMR (libver v110 + start_swmr_write) so h5py can
 * follow it live; `flush()` makes everything appended so far visible and durable against a crash of this process.
 * ../../docs/hdf5-layout.md states the guarantees.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import h5wasm from 'h5wasm/node'
import type { Dataset, File as H5File } from 'h5wasm/node'
import { ErrorCode, FlyScanError } from '../errors.js'
import { ColumnDecoder } from '../parsers/index.js'
import type { ColumnArray, EndData, FrameData, StartData } from '../parsers/index.js'
import { DEFAULT_BLOCK_ROWS, pandaFileLayout } from './layout.js'
import type { PandaFileLayout } from './layout.js'

/** What `onBlockWritten` reports after each block reached the datasets. */
export interface BlockWritten {
  /** Rows in this block. */
  readonly rows: number
  /** Rows in the datasets after this block. */
  readonly rowsWritten: number
  /** Time the resize + write_slice calls of this block took, in nanoseconds. */
  readonly writeNs: number
}

export interface PandaHdfWriterOptions {
  /** Rows buffered per dataset before a block is written (default DEFAULT_BLOCK_ROWS = 10,000). */
  readonly blockRows?: number
  /** HDF5 chunk length in rows (default: blockRows). */
  readonly chunkRows?: number
  /** Called synchronously after every block write (from append, flush or close). */
  readonly onBlockWritten?: (info: BlockWritten) => void
}

/** How an acquisition ended, for `close()`. */
export interface PandaCloseInfo {
  /** The END line (or what the parser made of a socket that closed without one). */
  readonly end?: EndData
  /** Why the acquisition or the scan failed, if it did; written as the `error` attribute. */
  readonly error?: unknown
}

/** Rows the block buffers hold at first. */
const INITIAL_BUFFER_ROWS = 16_384

const DTYPE = { float64: '<d', uint32: '<I' } as const

function errorText (err: unknown): string {
  if (err instanceof FlyScanError) return `${err.code}: ${err.message}`
  if (err instanceof Error) return err.message
  return String(err)
}

/**
 * Proves that `dir` takes HDF5 files before the first acquisition needs one: creates a small SWMR file there with
 * one chunked dataset, writes, flushes, closes and removes it. Throws FLY_ERR_HDF5 naming the directory. It also
 * warms h5wasm's file layer, which otherwise costs the first acquisition tens of milliseconds.
 */
export async function checkWritable (dir: string): Promise<void> {
  await h5wasm.ready
  const path = join(dir, `.tst-fly-write-check-${process.pid}-${Math.random().toString(36).slice(2)}.h5`)
  let file: H5File | undefined
  try {
    file = new h5wasm.File(path, 'w', { libver: 'v110' })
    const ds = file.create_dataset({ name: 'check', data: new Float64Array(0), shape: [0], dtype: '<d', maxshape: [null], chunks: [1024] })
    file.start_swmr_write()
    ds.resize([1024])
    ds.write_slice([[0, 1024]], new Float64Array(1024))
    file.flush()
    file.close()
    file = undefined
  } catch (err) {
    try { file?.close() } catch { /* the first error is the one to report */ }
    throw new FlyScanError(ErrorCode.HDF5, `output directory ${dir} does not take HDF5 files: ${errorText(err)}`,
      { details: { dir }, cause: err })
  } finally {
    rmSync(path, { force: true })
  }
}

export class PandaHdfWriter {
  readonly path: string
  readonly layout: PandaFileLayout
  readonly blockRows: number
  #file: H5File | undefined
  readonly #datasets: Dataset[]
  readonly #decoder: ColumnDecoder
  /** Block buffers: they start small and grow (x4) up to blockRows, so short acquisitions stay cheap. */
  #buffers: ColumnArray[]
  readonly #rowBytes: number
  readonly #onBlockWritten: ((info: BlockWritten) => void) | undefined
  #buffered = 0
  #written = 0
  #flushed = 0
  #failed: FlyScanError | undefined

  private constructor (path: string, file: H5File, datasets: Dataset[], decoder: ColumnDecoder, layout: PandaFileLayout,
    blockRows: number, onBlockWritten: ((info: BlockWritten) => void) | undefined) {
    this.path = path
    this.#file = file
    this.#datasets = datasets
    this.#decoder = decoder
    this.layout = layout
    this.blockRows = blockRows
    this.#buffers = decoder.allocate(Math.min(blockRows, INITIAL_BUFFER_ROWS))
    this.#rowBytes = decoder.rowBytes
    this.#onBlockWritten = onBlockWritten
  }

  /**
   * Create (truncate) `path` with one empty, chunked, unlimited dataset per captured field and the header's
   * attributes, switch it to SWMR writing and flush it. Throws FLY_ERR_HDF5 (file) or FLY_ERR_PANDA_PROTOCOL (header).
   */
  static async create (path: string, start: StartData, options: PandaHdfWriterOptions = {}): Promise<PandaHdfWriter> {
    const blockRows = options.blockRows ?? DEFAULT_BLOCK_ROWS
    if (!Number.isInteger(blockRows) || blockRows < 1) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `PandA HDF5 writer: blockRows must be a positive integer, got ${blockRows}`,
        { details: { blockRows } })
    }
    const chunkRows = options.chunkRows ?? blockRows
    const decoder = new ColumnDecoder(start)
    const layout = pandaFileLayout(start, { chunkRows })
    await h5wasm.ready
    let file: H5File | undefined
    let step = 'open'
    try {
      file = new h5wasm.File(path, 'w', { libver: 'v110' })
      if (file.file_id < 0n) {
        file = undefined
        throw new Error('HDF5 could not create the file (does its directory exist and is it writable?)')
      }
      const datasets: Dataset[] = []
      for (const d of layout.datasets) {
        step = `create dataset ${d.path}`
        const empty = d.dtype === 'uint32' ? new Uint32Array(0) : new Float64Array(0)
        const ds = file.create_dataset({
          name: d.name, data: empty, shape: [0], dtype: DTYPE[d.dtype], maxshape: [null], chunks: [chunkRows]
        }) as Dataset | null
        if (ds === null) throw new Error('h5wasm returned no dataset')
        if (d.units !== undefined) ds.create_attribute('units', d.units)
        datasets.push(ds)
      }
      step = 'write header attributes'
      const a = layout.attributes
      if (a.arm_time !== undefined) file.create_attribute('arm_time', a.arm_time)
      if (a.start_time !== undefined) file.create_attribute('start_time', a.start_time)
      if (a.hw_time_offset_ns !== undefined) {
        file.create_attribute('hw_time_offset_ns', new BigInt64Array([BigInt(a.hw_time_offset_ns)]), [], '<q')
      }
      step = 'start SWMR write'
      const status = file.start_swmr_write()
      if (status < 0) throw new Error(`H5Fstart_swmr_write returned ${status}`)
      step = 'flush'
      file.flush()
      return new PandaHdfWriter(path, file, datasets, decoder, layout, blockRows, options.onBlockWritten)
    } catch (err) {
      try { file?.close() } catch { /* the first error is the one to report */ }
      throw new FlyScanError(ErrorCode.HDF5, `PandA HDF5 file ${path}: ${step} failed: ${errorText(err)}`,
        { details: { file: path, step }, cause: err })
    }
  }

  /** Rows in the datasets (written with write_slice; visible to readers after the next flush). */
  get rowsWritten (): number { return this.#written }
  /** Rows decoded but not yet written (fewer than blockRows). */
  get rowsBuffered (): number { return this.#buffered }
  /** Rows written and flushed: what a reader or a crash would find. */
  get rowsFlushed (): number { return this.#flushed }
  /** Bytes of dataset values written (rowsWritten x the sum of element sizes). */
  get bytesWritten (): number { return this.#written * this.#rowBytes }
  get closed (): boolean { return this.#file === undefined }

  /**
   * Decode the frame's rows into the block buffers; write each block that fills. Returns the rows written to the
   * datasets during this call (0 or a multiple of blockRows). `frame.bytes` is not kept.
   */
  append (frame: FrameData): number {
    this.#check('append')
    let done = 0
    let written = 0
    while (done < frame.rows) {
      const n = Math.min(frame.rows - done, this.blockRows - this.#buffered)
      this.#reserve(this.#buffered + n)
      this.#decoder.decode(frame, this.#buffers, this.#buffered, done, n)
      this.#buffered += n
      done += n
      if (this.#buffered === this.blockRows) written += this.#writeBlock()
    }
    return written
  }

  /**
   * Appends rows already decoded into columns (one per dataset, in layout order, each at least `rows` long: the
   * capture worker decodes into the PandA ring). Copies them into the block buffers; writes each block that fills.
   * Returns the rows written to the datasets during this call. The arrays are not kept.
   */
  appendColumns (columns: readonly ColumnArray[], rows: number): number {
    this.#check('append')
    if (columns.length !== this.#buffers.length) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `PandA HDF5 file ${this.path}: ${columns.length} columns given, the layout has ${this.#buffers.length}`,
        { details: { file: this.path, columns: columns.length, datasets: this.#buffers.length } })
    }
    let done = 0
    let written = 0
    while (done < rows) {
      const n = Math.min(rows - done, this.blockRows - this.#buffered)
      this.#reserve(this.#buffered + n)
      for (let i = 0; i < columns.length; i++) {
        const src = columns[i] as ColumnArray
        const dst = this.#buffers[i] as ColumnArray
        dst.set(done === 0 && n === src.length ? src : src.subarray(done, done + n), this.#buffered)
      }
      this.#buffered += n
      done += n
      if (this.#buffered === this.blockRows) written += this.#writeBlock()
    }
    return written
  }

  /** Grows the block buffers (x4, capped at blockRows) until they hold `rows` rows. */
  #reserve (rows: number): void {
    const have = (this.#buffers[0] as ColumnArray | undefined)?.length ?? this.blockRows
    if (rows <= have) return
    let size = have
    while (size < rows) size = Math.min(this.blockRows, size * 4)
    const bigger = this.#decoder.allocate(size)
    for (let i = 0; i < bigger.length; i++) (bigger[i] as ColumnArray).set((this.#buffers[i] as ColumnArray).subarray(0, this.#buffered))
    this.#buffers = bigger
  }

  /** Write the partial block and flush the file (readers see every row appended so far). Returns rows written now. */
  flush (): number {
    this.#check('flush')
    const written = this.#writeBlock()
    this.#h5('flush', () => (this.#file as H5File).flush())
    this.#flushed = this.#written
    return written
  }

  /**
   * Write what is buffered, record how the acquisition ended (attributes `end_reason`, `samples`, `rows_written`,
   * `error`) and close the file. Idempotent. If writing fails the file is still closed and the error is thrown.
   */
  close (info: PandaCloseInfo = {}): void {
    const file = this.#file
    if (file === undefined) return
    let first: unknown
    const attempt = (fn: () => void): void => {
      try { fn() } catch (err) { first ??= err }
    }
    if (this.#failed === undefined) attempt(() => { this.#writeBlock() })
    attempt(() => this.#h5('write end attributes', () => {
      if (info.end !== undefined) {
        file.create_attribute('end_reason', info.end.reason)
        file.create_attribute('samples', new BigInt64Array([BigInt(info.end.samples)]), [], '<q')
      }
      file.create_attribute('rows_written', new BigInt64Array([BigInt(this.#written)]), [], '<q')
      const error = info.error ?? this.#failed
      if (error !== undefined) file.create_attribute('error', errorText(error))
    }))
    attempt(() => this.#h5('close', () => { file.close() }))
    this.#file = undefined
    if (first === undefined) this.#flushed = this.#written
    if (first !== undefined) throw first
  }

  #check (op: string): void {
    if (this.#file === undefined) {
      throw new FlyScanError(ErrorCode.HDF5, `PandA HDF5 file ${this.path}: ${op} after close`,
        { details: { file: this.path, op } })
    }
    if (this.#failed !== undefined) {
      throw new FlyScanError(ErrorCode.HDF5, `PandA HDF5 file ${this.path}: ${op} after an earlier failure: ` +
        this.#failed.message, { details: { file: this.path, op }, cause: this.#failed })
    }
  }

  /** Run an h5wasm call; turn its failure into FLY_ERR_HDF5 naming the file and step, and mark the writer failed. */
  #h5<T>(step: string, fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      const e = err instanceof FlyScanError && err.code === ErrorCode.HDF5
        ? err
        : new FlyScanError(ErrorCode.HDF5, `PandA HDF5 file ${this.path}: ${step} failed: ${errorText(err)}`,
          { details: { file: this.path, step, rowsWritten: this.#written }, cause: err })
      this.#failed ??= e
      throw e
    }
  }

  #writeBlock (): number {
    const rows = this.#buffered
    if (rows === 0) return 0
    const t0 = process.hrtime.bigint()
    const from = this.#written
    const to = from + rows
    const datasets = this.#datasets
    for (let i = 0; i < datasets.length; i++) {
      const ds = datasets[i] as Dataset
      const buf = this.#buffers[i] as ColumnArray
      this.#h5(`write rows ${from}..${to} of ${ds.path}`, () => {
        const status = ds.resize([to])
        if (status < 0) throw new Error(`resize to ${to} rows returned ${status}`)
        ds.write_slice([[from, to]], rows === buf.length ? buf : buf.subarray(0, rows))
      })
    }
    this.#written = to
    this.#buffered = 0
    this.#onBlockWritten?.({ rows, rowsWritten: to, writeNs: Number(process.hrtime.bigint() - t0) })
    return rows
  }
}
