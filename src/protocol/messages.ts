/**
 * The control protocol between the supervisor and its workers: one closed, discriminated union per direction per
 * worker, keyed by `kind`. Bulk data (rows, frames) never travels here: it moves through the rings, and the
 * lifecycle of an acquisition (its header, its rows, its end) travels in-band in the PandA ring so that the writer
 * sees it in stream order. docs/where-logic-lives.md has the sequence diagrams.
 */
import type { WireError } from '../errors.js'
import type { DataOptions, EndData } from '../parsers/index.js'
import type { EncodedHistograms } from '../metrics/index.js'
import type { CaConfig } from '../config/index.js'
import type { AnalysisCounters, RoiSpec, RoiStats } from '../analysis/index.js'

/** Counters a worker reports with its histograms. */
export type Counters = Readonly<Record<string, number>>

// ---------------------------------------------------------------- panda-capture

export interface PandaCaptureData {
  readonly kind: 'panda-capture'
  readonly host: string
  readonly port: number
  readonly options: DataOptions
  /** The PandA ring (this worker is its producer). */
  readonly ring: SharedArrayBuffer
  readonly connectTimeoutMs: number
  /** Size of the one buffer every socket read lands in. */
  readonly readBufferBytes: number
  /** Largest record the worker publishes; bigger socket reads are split at row boundaries. */
  readonly maxRecordBytes: number
}

export type PandaCaptureDown =
  | { readonly kind: 'stats', readonly id: number }
  /** Stop: end the connection now (an acquisition in progress ends as Early disconnect), close the ring, exit. */
  | { readonly kind: 'close' }

export type PandaCaptureUp =
  | { readonly kind: 'ready', readonly localPort: number }
  | { readonly kind: 'start', readonly acquisition: number, readonly fields: readonly string[], readonly sampleBytes: number }
  | { readonly kind: 'end', readonly acquisition: number, readonly end: EndData, readonly rowsReceived: number }
  | { readonly kind: 'error', readonly error: WireError }
  | { readonly kind: 'stats', readonly id: number, readonly histograms: EncodedHistograms, readonly counters: Counters }
  | { readonly kind: 'closed', readonly bytesReceived: number, readonly acquisitions: number }

// ---------------------------------------------------------------- hdf5-writer

export interface Hdf5WriterData {
  readonly kind: 'hdf5-writer'
  /** The PandA ring (this worker is its consumer). */
  readonly ring: SharedArrayBuffer
  /** Directory the files go into; one file per acquisition. */
  readonly outDir: string
  /** File name stem: files are `<stem>-<acquisition>.h5` (acquisition numbered from 1). */
  readonly fileStem: string
  /** Rows per block; undefined to size blocks by blockBytes (config/defaults.ts). */
  readonly blockRows: number | undefined
  readonly blockBytes: number
  readonly minBlockRows: number
  readonly maxBlockRows: number
  readonly chunkRows: number
  readonly flushPeriodMs: number
  /** Bound on one blocking wait for data; the worker returns to its event loop at least this often. */
  readonly waitSliceMs: number
}

export type Hdf5WriterDown =
  | { readonly kind: 'stats', readonly id: number }
  | { readonly kind: 'flush', readonly id: number }

export interface FileSummary {
  readonly acquisition: number
  readonly path: string
  readonly rows: number
  readonly fields: readonly string[]
  readonly endReason: string
  readonly error: string | undefined
}

export type Hdf5WriterUp =
  | { readonly kind: 'ready' }
  | { readonly kind: 'file-opened', readonly acquisition: number, readonly path: string }
  | { readonly kind: 'progress', readonly acquisition: number, readonly rowsWritten: number }
  | { readonly kind: 'file-closed', readonly file: FileSummary }
  | { readonly kind: 'flushed', readonly id: number }
  | { readonly kind: 'error', readonly error: WireError }
  | { readonly kind: 'stats', readonly id: number, readonly histograms: EncodedHistograms, readonly counters: Counters }
  | { readonly kind: 'closed', readonly files: readonly FileSummary[] }

// ---------------------------------------------------------------- PandA ring records

/** Tags of the records in the PandA ring (the ring's per-record u32 tag). */
export const PandaRecordTag = {
  /** JSON of StartData. */
  START: 1,
  /**
   * Rows decoded into one column per dataset (src/pipeline/rows-record.ts has the layout). The ring record's
   * timestamp is the socket arrival time.
   */
  ROWS: 2,
  /** JSON of { end: EndData, error?: WireError }. */
  END: 3
} as const
export type PandaRecordTag = typeof PandaRecordTag[keyof typeof PandaRecordTag]

export interface EndRecord {
  readonly end: EndData
  readonly error: WireError | undefined
}

// ---------------------------------------------------------------- camera-capture

/** What the camera-capture worker needs (docs/camera-pipeline.md). */
export interface CameraCaptureData {
  readonly kind: 'camera-capture'
  /** Device name, for messages. */
  readonly name: string
  /** PV prefix, e.g. `XF:31ID1-ES{GigE-Cam:1}`; record-name parts of the driver and the image plugin. */
  readonly prefix: string
  readonly driver: string
  readonly image: string
  /** The Channel Access settings of the worker's own context. */
  readonly ca: CaConfig
  /** Frame-ring slots (a power of two); undefined to size by ringBytes within [minSlots, maxSlots]. */
  readonly slots: number | undefined
  readonly ringBytes: number
  readonly minSlots: number
  readonly maxSlots: number
  readonly connectTimeoutMs: number
  readonly pairTimeoutMs: number
  readonly uniqueIdHistory: number
  readonly progressPeriodMs: number
}

export type CameraCaptureDown =
  | { readonly kind: 'stats', readonly id: number }
  /** Stop: unsubscribe, publish what is pending, close the ring (the writer finishes the file), destroy the CA context, exit. */
  | { readonly kind: 'close' }

/** The capture counters (CaptureCounters of src/pipeline/camera-capture-logic.ts), as plain numbers (-1: none yet). */
export interface CameraCaptureCounters {
  readonly received: number
  readonly dropped: number
  readonly stale: number
  readonly unpaired: number
  readonly uniqueIdGaps: number
  readonly firstUniqueId: number
  readonly lastUniqueId: number
}

export type CameraCaptureUp =
  /** The camera's frame shape is known and the frame ring made: the supervisor starts the writer on `ring`. */
  | { readonly kind: 'shape', readonly width: number, readonly height: number, readonly dtype: string, readonly ring: SharedArrayBuffer }
  /** Both monitors delivered their initial update: frames from now on are new. */
  | { readonly kind: 'ready' }
  | { readonly kind: 'progress', readonly counters: CameraCaptureCounters }
  | { readonly kind: 'error', readonly error: WireError }
  | { readonly kind: 'stats', readonly id: number, readonly histograms: EncodedHistograms, readonly counters: Counters }
  | { readonly kind: 'closed', readonly counters: CameraCaptureCounters }

// ---------------------------------------------------------------- frame-writer

export interface FrameWriterData {
  readonly kind: 'frame-writer'
  /** The frame ring (this worker is its consumer). */
  readonly ring: SharedArrayBuffer
  /** The file to create (its directory exists). */
  readonly file: string
  readonly width: number
  readonly height: number
  /** NDDataType name (UInt8, UInt16, ...). */
  readonly dtype: string
  readonly flushPeriodMs: number
  readonly waitSliceMs: number
  readonly diskReserveBytes: number
  /** ROIs to analyse in the worker's AnalysisPool as frames are written (none: no pool, no `roi` messages). */
  readonly rois?: readonly RoiSpec[]
}

/** One frame's ROI statistics (small: a few numbers per ROI), sent up in batches. */
export interface RoiRow {
  /** The frame's index in the file (0 = the first frame written). */
  readonly frame: number
  readonly uniqueId: number
  /** The frame's EPICS timestamp (seconds since 1990, 0 when the IOC gave none). */
  readonly epicsSec: number
  readonly epicsNsec: number
  /** When the worker got the result (Unix seconds), for frames without an EPICS timestamp. */
  readonly receivedS: number
  /** In the order of FrameWriterData.rois. */
  readonly stats: readonly RoiStats[]
}

export type FrameWriterDown =
  | { readonly kind: 'stats', readonly id: number }
  | { readonly kind: 'flush', readonly id: number }

export type FrameWriterUp =
  /** The file is created (SWMR, empty datasets). */
  | { readonly kind: 'ready', readonly file: string }
  /** Frames on disk after a flush. */
  | { readonly kind: 'progress', readonly framesWritten: number, readonly bytesWritten: number }
  | { readonly kind: 'flushed', readonly id: number }
  | { readonly kind: 'error', readonly error: WireError }
  | { readonly kind: 'stats', readonly id: number, readonly histograms: EncodedHistograms, readonly counters: Counters }
  | { readonly kind: 'closed', readonly file: string, readonly framesWritten: number, readonly bytesWritten: number }
  /** ROI results since the last `roi` message (every flush, and a last one before `closed`), with the pool's counters. */
  | { readonly kind: 'roi', readonly rows: readonly RoiRow[], readonly counters: AnalysisCounters }
