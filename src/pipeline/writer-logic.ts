/**
 * The hdf5-writer worker's logic, without the thread: drains the PandA ring record by record (START opens a file,
 * ROWS append, END closes it with how the acquisition ended) and records where the time went. The worker file wraps
 * this in a loop of bounded waits.
 *
 * Latency (per row, in microseconds; a batch of rows shares its timestamps):
 *   ring.handoff_us         ring commit (capture worker) → read here
 *   hdf5.ring_to_disk_us    read here → the block holding the row was written to its datasets
 *   e2e.arrival_to_disk_us  socket arrival (capture worker) → the same
 *
 * And, when the acquisition captures PCAP.TS_TRIG, the trigger period it saw:
 *   panda.ts_trig_delta_us  TS_TRIG of a row − TS_TRIG of the row before (same acquisition), in µs. The histogram
 *                           keeps whole µs, exact below 2048 µs and to 3 significant digits above (a bucket of
 *                           8 µs at a 10 ms period): ../../docs/timing.md.
 */
import path from 'node:path'
import { ErrorCode, FlyScanError, fromWire } from '../errors.js'
import type { HistogramSet } from '../metrics/index.js'
import { nowNs } from '../metrics/index.js'
import { columnsFor, type ColumnSpec, type StartData } from '../parsers/index.js'
import { PandaHdfWriter, type BlockWritten } from '../hdf5/index.js'
import { PandaRecordTag, type EndRecord, type FileSummary } from '../protocol/index.js'
import type { RecordReader } from '../shm/index.js'
import { columnViews, readRowsHeader } from './rows-record.js'

export interface WriterEvents {
  fileOpened (acquisition: number, path: string): void
  progress (acquisition: number, rowsWritten: number): void
  fileClosed (file: FileSummary): void
}

export interface WriterLogicOptions {
  readonly ring: RecordReader
  readonly outDir: string
  readonly fileStem: string
  readonly blocks: BlockSizing
  readonly histograms: HistogramSet
  readonly events: WriterEvents
}

/** How big the writer's blocks are: a fixed row count, or bytes (all columns together) within row bounds. */
export interface BlockSizing {
  readonly rows: number | undefined
  readonly bytes: number
  readonly minRows: number
  readonly maxRows: number
  readonly chunkRows: number
}

/** Rows per block for rows of `rowBytes` bytes (every column together). */
export function blockRowsFor (sizing: BlockSizing, rowBytes: number): number {
  if (sizing.rows !== undefined) return sizing.rows
  const rows = Math.floor(sizing.bytes / Math.max(1, rowBytes))
  return Math.max(sizing.minRows, Math.min(sizing.maxRows, rows))
}

interface PendingBatch {
  rows: number
  readonly arrivalNs: number
  readonly readNs: number
}

const decoder = new TextDecoder()

/** The dataset PCAP.TS_TRIG is captured into (columnsFor names a column `<FIELD>.<Capture>`). */
export const TS_TRIG_COLUMN = 'PCAP.TS_TRIG.Value'
export const TS_TRIG_DELTA_HISTOGRAM = 'panda.ts_trig_delta_us'

/** µs per unit of TS_TRIG as the header gives it (PCAP.TS_TRIG.UNITS; the box's default is s). */
const MICROSECONDS_PER: Readonly<Record<string, number>> = { s: 1e6, ms: 1e3, us: 1, µs: 1, min: 60e6 }

/**
 * Where TS_TRIG is in the columns and how to turn its values into µs; undefined when the acquisition does not capture
 * it, or gives it in units not known here (the histogram is then not recorded).
 */
export function tsTrigColumn (columns: readonly ColumnSpec[]): { index: number, usPerUnit: number } | undefined {
  const index = columns.findIndex((c) => c.name === TS_TRIG_COLUMN)
  const c = columns[index]
  if (c === undefined || c.dtype !== 'float64') return undefined
  const usPerUnit = MICROSECONDS_PER[c.field.units ?? 's']
  return usPerUnit === undefined ? undefined : { index, usPerUnit }
}

export type DrainResult = 'idle' | 'ended' | 'failed'

export class PandaWriterLogic {
  readonly #ring: RecordReader
  readonly #opts: WriterLogicOptions
  readonly #hist: HistogramSet
  readonly #events: WriterEvents
  readonly #files: FileSummary[] = []
  readonly #pending: PendingBatch[] = []
  #writer: PandaHdfWriter | undefined
  #columns: readonly ColumnSpec[] | undefined
  #acquisition = 0
  #rowsRead = 0
  /** TS_TRIG's column and unit in this acquisition (undefined: not captured), and the last row's value (NaN: none yet). */
  #tsTrig: { index: number, usPerUnit: number } | undefined
  #lastTsTrig = Number.NaN

  constructor (options: WriterLogicOptions) {
    this.#ring = options.ring
    this.#opts = options
    this.#hist = options.histograms
    this.#events = options.events
  }

  get files (): readonly FileSummary[] { return this.#files }
  get rowsRead (): number { return this.#rowsRead }
  get openFile (): PandaHdfWriter | undefined { return this.#writer }

  /**
   * Handles every record available now. Returns 'ended' once the producer closed the ring and it is drained,
   * 'failed' when the ring is FAILED (the open file has then been closed with the error), 'idle' otherwise.
   */
  async drain (): Promise<DrainResult> {
    // The state is read before draining: everything committed before a close or a failure is then drained below,
    // and a record committed just before the producer closed is never mistaken for the end.
    const state = this.#ring.stateName()
    for (let rec = this.#ring.tryRead(); rec !== null; rec = this.#ring.tryRead()) {
      if (rec.tag === PandaRecordTag.START) {
        // The header is parsed out of the ring before the (asynchronous) file creation.
        const start = JSON.parse(decoder.decode(rec.payload)) as StartData
        this.#ring.release()
        await this.#open(start)
        continue
      }
      try {
        if (rec.tag === PandaRecordTag.ROWS) {
          this.#rows(rec.payload, rec.timestampNs)
        } else if (rec.tag === PandaRecordTag.END) {
          this.#close(JSON.parse(decoder.decode(rec.payload)) as EndRecord)
        } else {
          throw new FlyScanError(ErrorCode.PROTOCOL_MESSAGE, `PandA ring: unknown record tag ${rec.tag} (seq ${rec.seq})`)
        }
      } finally {
        this.#ring.release()
      }
    }
    if (state === 'FAILED') {
      this.finish(new FlyScanError(ErrorCode.RING_FAILED,
        `the PandA ring was marked FAILED by the ${this.#ring.failedBy() ?? 'unknown'} side; rows after the failure are lost`))
      return 'failed'
    }
    if (state === 'DRAINING' || state === 'CLOSED') {
      this.finish()
      return 'ended'
    }
    return 'idle'
  }

  /** Writes the partial block and flushes the open file (the periodic SWMR flush). */
  flush (): void {
    const w = this.#writer
    if (w === undefined) return
    w.flush()
    this.#events.progress(this.#acquisition, w.rowsWritten)
  }

  /**
   * Closes an acquisition left open (the ring ended or failed without its END record): the file records the
   * error and stays readable.
   */
  finish (error?: FlyScanError): void {
    if (this.#writer === undefined) return
    const reason = error ?? new FlyScanError(ErrorCode.PANDA_PROTOCOL, 'the PandA stream ended without an END record')
    this.#close({ end: { samples: this.#rowsRead, reason: 'Early disconnect' }, error: undefined }, reason)
  }

  async #open (start: StartData): Promise<void> {
    if (this.#writer !== undefined) {
      this.#close({ end: { samples: this.#rowsRead, reason: 'Early disconnect' }, error: undefined },
        new FlyScanError(ErrorCode.PANDA_PROTOCOL, 'a new acquisition began before the previous one ended'))
    }
    this.#acquisition++
    this.#rowsRead = 0
    this.#columns = columnsFor(start)
    this.#tsTrig = tsTrigColumn(this.#columns)
    this.#lastTsTrig = Number.NaN
    const file = path.join(this.#opts.outDir, `${this.#opts.fileStem}-${this.#acquisition}.h5`)
    const columns = this.#columns
    const blockRows = blockRowsFor(this.#opts.blocks, columns.reduce((n, c) => n + c.elementBytes, 0))
    this.#writer = await PandaHdfWriter.create(file, start, {
      blockRows,
      chunkRows: Math.min(blockRows, this.#opts.blocks.chunkRows),
      onBlockWritten: (b) => this.#blockWritten(b)
    })
    this.#events.fileOpened(this.#acquisition, file)
  }

  #rows (payload: Uint8Array, arrivalNs: number): void {
    const w = this.#writer
    const columns = this.#columns
    if (w === undefined || columns === undefined) {
      throw new FlyScanError(ErrorCode.PROTOCOL_MESSAGE, 'PandA ring: rows before any acquisition header')
    }
    const readNs = nowNs()
    const { commitNs, rows } = readRowsHeader(payload)
    this.#hist.recordMany('ring.handoff_us', (readNs - commitNs) / 1000, rows)
    this.#rowsRead += rows
    this.#pending.push({ rows, arrivalNs, readNs })
    const views = columnViews(columns, payload, rows)
    if (this.#tsTrig !== undefined) this.#recordTsTrig(views[this.#tsTrig.index] as Float64Array, rows, this.#tsTrig.usPerUnit)
    w.appendColumns(views, rows)
  }

  /**
   * Records the deltas between consecutive TS_TRIG values, carrying the last value across batches. Runs of the same
   * whole-µs delta (a clock's rows) are recorded as one count: no allocation, one call into the histogram per run.
   */
  #recordTsTrig (ts: Float64Array, rows: number, usPerUnit: number): void {
    let last = this.#lastTsTrig
    let run = Number.NaN
    let count = 0
    for (let i = 0; i < rows; i++) {
      const v = ts[i] as number
      if (!Number.isNaN(last)) {
        const delta = Math.round((v - last) * usPerUnit)
        if (delta === run) {
          count++
        } else {
          if (count > 0) this.#hist.recordMany(TS_TRIG_DELTA_HISTOGRAM, run, count)
          run = delta
          count = 1
        }
      }
      last = v
    }
    if (count > 0) this.#hist.recordMany(TS_TRIG_DELTA_HISTOGRAM, run, count)
    this.#lastTsTrig = last
  }

  #blockWritten (b: BlockWritten): void {
    const now = nowNs()
    let left = b.rows
    while (left > 0) {
      const p = this.#pending[0]
      if (p === undefined) break
      const n = Math.min(left, p.rows)
      this.#hist.recordMany('hdf5.ring_to_disk_us', (now - p.readNs) / 1000, n)
      this.#hist.recordMany('e2e.arrival_to_disk_us', (now - p.arrivalNs) / 1000, n)
      p.rows -= n
      left -= n
      if (p.rows === 0) this.#pending.shift()
    }
    this.#hist.record('hdf5.block_write_us', b.writeNs / 1000)
  }

  #close (rec: EndRecord, localError?: FlyScanError): void {
    const w = this.#writer
    if (w === undefined) {
      throw new FlyScanError(ErrorCode.PROTOCOL_MESSAGE, 'PandA ring: END without an acquisition header')
    }
    this.#writer = undefined
    const error = localError ?? (rec.error === undefined ? undefined : fromWire(rec.error))
    let closeError: unknown
    try {
      w.close({ end: rec.end, error })
    } catch (err) {
      closeError = err
    }
    this.#pending.length = 0
    const summary: FileSummary = {
      acquisition: this.#acquisition,
      path: w.path,
      rows: w.rowsWritten,
      fields: w.layout.datasets.map((d) => d.name),
      endReason: rec.end.reason,
      error: error?.message ?? (closeError instanceof Error ? closeError.message : undefined)
    }
    this.#files.push(summary)
    this.#events.progress(this.#acquisition, w.rowsWritten)
    this.#events.fileClosed(summary)
    if (closeError !== undefined) throw closeError
  }
}
