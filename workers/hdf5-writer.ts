/**
 * hdf5-writer worker: owns the HDF5 files. Drains the PandA ring into one file per acquisition (PandaWriterLogic).
 * It has no sockets, so it blocks in Atomics.wait, bounded by waitSliceMs, and returns to its event loop between
 * waits so that flush and stats requests are served. Flushes every flushPeriodMs (SWMR readers follow the file).
 */
import { toWire } from '../src/errors.js'
import { HistogramSet } from '../src/metrics/index.js'
import { checkWritable } from '../src/hdf5/index.js'
import { PandaWriterLogic } from '../src/pipeline/index.js'
import type { Hdf5WriterData, Hdf5WriterDown, Hdf5WriterUp } from '../src/protocol/index.js'
import { attachRecordReader, waitForData } from '../src/shm/index.js'
import { startWorker, unknownMessage } from './runtime.js'

const { data, port } = startWorker<Hdf5WriterData, Hdf5WriterUp, Hdf5WriterDown>('hdf5-writer')
const histograms = new HistogramSet()
const ring = attachRecordReader(data.ring)
const logic = new PandaWriterLogic({
  ring,
  outDir: data.outDir,
  fileStem: data.fileStem,
  blocks: { rows: data.blockRows, bytes: data.blockBytes, minRows: data.minBlockRows, maxRows: data.maxBlockRows, chunkRows: data.chunkRows },
  histograms,
  events: {
    fileOpened: (acquisition, path) => port.post({ kind: 'file-opened', acquisition, path }),
    progress: (acquisition, rowsWritten) => port.post({ kind: 'progress', acquisition, rowsWritten }),
    fileClosed: (file) => port.post({ kind: 'file-closed', file })
  }
})

function counters (): Record<string, number> {
  const s = ring.stats()
  return { readRecords: s.readRecords, readBytes: s.readBytes, files: logic.files.length }
}

port.onMessage((msg) => {
  switch (msg.kind) {
    case 'stats':
      port.post({ kind: 'stats', id: msg.id, histograms: histograms.encode(), counters: counters() })
      break
    case 'flush':
      logic.flush()
      port.post({ kind: 'flushed', id: msg.id })
      break
    default:
      unknownMessage('hdf5-writer', msg)
  }
})

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

async function run (): Promise<void> {
  await checkWritable(data.outDir)
  port.post({ kind: 'ready' })
  let lastFlush = performance.now()
  for (;;) {
    const result = await logic.drain()
    if (result !== 'idle') break
    if (performance.now() - lastFlush >= data.flushPeriodMs) {
      logic.flush()
      lastFlush = performance.now()
    }
    waitForData(ring, data.waitSliceMs)
    await yieldToEventLoop()
  }
  port.post({ kind: 'stats', id: 0, histograms: histograms.encode(), counters: counters() })
  port.post({ kind: 'closed', files: logic.files })
  port.release()
}

run().catch((err: unknown) => {
  try {
    logic.finish()
  } catch { /* the first error is the one to report */ }
  port.post({ kind: 'error', error: toWire(err) })
  port.post({ kind: 'closed', files: logic.files })
  port.release()
  process.exitCode = 1
})
