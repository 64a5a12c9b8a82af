/**
 * frame-writer worker: owns one camera file. Creates it (SWMR, empty datasets), reports ready, then drains the frame
 * ring into it (FrameWriterLogic). It has no sockets, so it blocks in Atomics.wait, bounded by waitSliceMs, and
 * returns to its event loop between waits so that flush and stats requests are served. Flushes (and reports
 * progress) every flushPeriodMs; closes the file when the capture closes the ring, or with what it has when the
 * ring fails or a write fails (disk full).
 *
 * With ROIs (FrameWriterData.rois) it also owns an AnalysisPool: each frame's ROI box is copied from its slot into
 * the pool's shared buffers as the frame is written (a busy pool skips the frame, counted), and the small results
 * go up in `roi` messages at every flush and once more before `closed` (docs/analysis.md).
 */
import { AnalysisPool, validateRois, type FrameDtype } from '../src/analysis/index.js'
import { ErrorCode, FlyScanError, toWire } from '../src/errors.js'
import { FrameHdfWriter, type NdDataType } from '../src/hdf5/index.js'
import { HistogramSet } from '../src/metrics/index.js'
import { FrameWriterLogic } from '../src/pipeline/index.js'
import type { FrameWriterData, FrameWriterDown, FrameWriterUp, RoiRow } from '../src/protocol/index.js'
import { attachSlotReader, waitForData } from '../src/shm/index.js'
import { startWorker, unknownMessage } from './runtime.js'

const { data, port } = startWorker<FrameWriterData, FrameWriterUp, FrameWriterDown>('frame-writer')
const histograms = new HistogramSet()
const ring = attachSlotReader(data.ring)
let logic: FrameWriterLogic | undefined

interface RoiTag { readonly frame: number, readonly uniqueId: number, readonly epicsSec: number, readonly epicsNsec: number }
const rois = data.rois ?? []
let roiRows: RoiRow[] = []
let pool: AnalysisPool<RoiTag> | undefined

function roiDtype (dtype: string): FrameDtype {
  if (dtype === 'UInt8') return 'uint8'
  if (dtype === 'UInt16') return 'uint16'
  throw new FlyScanError(ErrorCode.BAD_INPUT, `frame writer ${data.file}: ROI statistics need UInt8 or UInt16 frames, not ${dtype}`, { details: { file: data.file, dtype } })
}

/** The ROI rows gathered since the last report, with the pool's counters. */
function postRoi (): void {
  if (pool === undefined) return
  port.post({ kind: 'roi', rows: roiRows, counters: pool.counters() })
  roiRows = []
}

function counters (): Record<string, number> {
  const s = ring.stats()
  return { readRecords: s.readRecords, readBytes: s.readBytes, framesWritten: logic?.framesWritten ?? 0, ringHighWaterSlots: s.highWaterSlots, ringSlots: s.slots }
}

port.onMessage((msg) => {
  switch (msg.kind) {
    case 'stats':
      port.post({ kind: 'stats', id: msg.id, histograms: histograms.encode(), counters: counters() })
      break
    case 'flush':
      logic?.flush()
      port.post({ kind: 'flushed', id: msg.id })
      break
    default:
      unknownMessage('frame-writer', msg)
  }
})

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

async function run (): Promise<void> {
  let dtype: FrameDtype | undefined
  if (rois.length > 0) {
    dtype = roiDtype(data.dtype)
    try {
      validateRois(rois, data.width, data.height)
    } catch (err) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `frame writer ${data.file}: rois: ${err instanceof Error ? err.message : String(err)}`, { cause: err, details: { file: data.file } })
    }
    pool = new AnalysisPool<RoiTag>({
      onRoi: (tag, stats) => { roiRows.push({ ...tag, receivedS: Date.now() / 1000, stats }) },
      // A failed frame is counted (counters.failed); the scan goes on.
      onRoiError: () => {}
    })
    await pool.ready()
  }
  const writer = await FrameHdfWriter.create(data.file, { width: data.width, height: data.height, dtype: data.dtype as NdDataType },
    { diskReserveBytes: data.diskReserveBytes })
  const l = new FrameWriterLogic({
    ring,
    writer,
    histograms,
    events: {
      progress: (framesWritten, bytesWritten) => {
        postRoi()
        port.post({ kind: 'progress', framesWritten, bytesWritten })
      }
    },
    ...(pool === undefined || dtype === undefined
      ? {}
      : {
          onFrame: (pixels: Uint8Array, frame: number, info: { uniqueId: number, epicsSec: number, epicsNsec: number }) => {
            // Copies the ROIs' box out of the slot, or skips the frame (counted) when every buffer is busy.
            (pool as AnalysisPool<RoiTag>).submitRoi(pixels, data.width, data.height, dtype, rois, { frame, ...info })
          }
        })
  })
  logic = l
  port.post({ kind: 'ready', file: data.file })
  let lastFlush = performance.now()
  for (;;) {
    if (l.drain() !== 'idle') break
    if (performance.now() - lastFlush >= data.flushPeriodMs) {
      l.flush()
      lastFlush = performance.now()
    }
    waitForData(ring, data.waitSliceMs)
    await yieldToEventLoop()
  }
  if (l.error !== undefined) port.post({ kind: 'error', error: toWire(l.error) })
  if (pool !== undefined) {
    await pool.close()
    postRoi()
  }
  port.post({ kind: 'stats', id: 0, histograms: histograms.encode(), counters: counters() })
  port.post({ kind: 'closed', file: data.file, framesWritten: l.framesWritten, bytesWritten: l.bytesWritten })
  port.release()
}

run().catch((err: unknown) => {
  // The ring is failed so that the capture side stops filling it; the file (if it was made) is closed readable.
  ring.fail()
  logic?.finish()
  pool?.destroy().catch(() => {})
  port.post({ kind: 'error', error: toWire(err) })
  port.post({ kind: 'closed', file: data.file, framesWritten: logic?.framesWritten ?? 0, bytesWritten: logic?.bytesWritten ?? 0 })
  port.release()
  process.exitCode = 1
})
