/**
 * frame-writer worker: owns one camera file. Creates it (SWMR, empty datasets), reports ready, then drains the frame
 * ring into it (FrameWriterLogic). It has no sockets, so it blocks in Atomics.wait, bounded by waitSliceMs, and
 * returns to its event loop between waits so that flush and stats requests are served. Flushes (and reports
 * progress) every flushPeriodMs; closes the file when the capture closes the ring, or with what it has when the
 * ring fails or a write fails (disk full).
 */
import { toWire } from '../src/errors.js'
import { FrameHdfWriter, type NdDataType } from '../src/hdf5/index.js'
import { HistogramSet } from '../src/metrics/index.js'
import { FrameWriterLogic } from '../src/pipeline/index.js'
import type { FrameWriterData, FrameWriterDown, FrameWriterUp } from '../src/protocol/index.js'
import { attachSlotReader, waitForData } from '../src/shm/index.js'
import { startWorker, unknownMessage } from './runtime.js'

const { data, port } = startWorker<FrameWriterData, FrameWriterUp, FrameWriterDown>('frame-writer')
const histograms = new HistogramSet()
const ring = attachSlotReader(data.ring)
let logic: FrameWriterLogic | undefined

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
  const writer = await FrameHdfWriter.create(data.file, { width: data.width, height: data.height, dtype: data.dtype as NdDataType },
    { diskReserveBytes: data.diskReserveBytes })
  const l = new FrameWriterLogic({
    ring,
    writer,
    histograms,
    events: { progress: (framesWritten, bytesWritten) => port.post({ kind: 'progress', framesWritten, bytesWritten }) }
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
  port.post({ kind: 'stats', id: 0, histograms: histograms.encode(), counters: counters() })
  port.post({ kind: 'closed', file: data.file, framesWritten: l.framesWritten, bytesWritten: l.bytesWritten })
  port.release()
}

run().catch((err: unknown) => {
  // The ring is failed so that the capture side stops filling it; the file (if it was made) is closed readable.
  ring.fail()
  logic?.finish()
  port.post({ kind: 'error', error: toWire(err) })
  port.post({ kind: 'closed', file: data.file, framesWritten: logic?.framesWritten ?? 0, bytesWritten: logic?.bytesWritten ?? 0 })
  port.release()
  process.exitCode = 1
})
