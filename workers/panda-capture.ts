/**
 * panda-capture worker: owns the TCP socket to a PandA data port. Socket bytes → PandaCaptureLogic (parser →
 * PandA ring). Never pauses the socket. Reports header, end, errors and stats to the supervisor.
 */
import net from 'node:net'
import { ErrorCode, FlyScanError, toWire } from '../src/errors.js'
import { HistogramSet, nowNs } from '../src/metrics/index.js'
import { PandaDataParser, optionsLine } from '../src/parsers/index.js'
import { PandaCaptureLogic } from '../src/pipeline/index.js'
import type { PandaCaptureData, PandaCaptureDown, PandaCaptureUp } from '../src/protocol/index.js'
import { attachRecordWriter } from '../src/shm/index.js'
import { startWorker, unknownMessage } from './runtime.js'

const { data, port } = startWorker<PandaCaptureData, PandaCaptureUp, PandaCaptureDown>('panda-capture')
const histograms = new HistogramSet()
const ring = attachRecordWriter(data.ring)
const logic = new PandaCaptureLogic({
  ring,
  parser: new PandaDataParser(data.options),
  histograms,
  maxRecordBytes: data.maxRecordBytes,
  events: {
    start: (acquisition, start) => port.post({ kind: 'start', acquisition, fields: start.fields.map((f) => `${f.name}.${f.capture}`), sampleBytes: start.sampleBytes }),
    end: (acquisition, end, rowsReceived) => port.post({ kind: 'end', acquisition, end, rowsReceived })
  }
})

let failed = false

/** Each socket read lands in this one buffer (no allocation per read); the logic copies out before the next read. */
const readBuffer = new Uint8Array(data.readBufferBytes)
function onRead (nread: number, buf: Uint8Array): boolean {
  if (failed) return true
  try {
    logic.onChunk(buf.subarray(0, nread), nowNs())
  } catch (err) {
    failed = true
    logic.fail(err)
    port.post({ kind: 'error', error: toWire(err) })
    socket.destroy()
  }
  return true
}

const socket = net.connect({ host: data.host, port: data.port, onread: { buffer: readBuffer, callback: onRead } })
socket.setNoDelay(true)
const connectTimer = setTimeout(() => {
  socket.destroy(new FlyScanError(ErrorCode.CONNECTION,
    `PandA data port ${data.host}:${data.port}: no connection within ${data.connectTimeoutMs} ms`))
}, data.connectTimeoutMs)

socket.once('connect', () => {
  clearTimeout(connectTimer)
  socket.write(optionsLine(data.options))
  port.post({ kind: 'ready', localPort: socket.localPort ?? 0 })
})
socket.on('error', (err) => {
  if (failed) return
  failed = true
  const e = err instanceof FlyScanError
    ? err
    : new FlyScanError(ErrorCode.CONNECTION, `PandA data port ${data.host}:${data.port}: ${err.message}`, { cause: err })
  logic.fail(e)
  port.post({ kind: 'error', error: toWire(e) })
})
socket.on('close', () => {
  clearTimeout(connectTimer)
  if (!failed) logic.onClose()
  port.post({ kind: 'stats', id: 0, histograms: histograms.encode(), counters: counters() })
  port.post({ kind: 'closed', bytesReceived: logic.bytesReceived, acquisitions: logic.acquisitions })
  port.release()
})

function counters (): Record<string, number> {
  const s = ring.stats()
  return { bytesReceived: logic.bytesReceived, acquisitions: logic.acquisitions, ringHighWaterBytes: s.highWaterBytes, ringCapacityBytes: s.capacityBytes }
}

port.onMessage((msg) => {
  switch (msg.kind) {
    case 'stats':
      port.post({ kind: 'stats', id: msg.id, histograms: histograms.encode(), counters: counters() })
      break
    case 'close':
      socket.destroy()
      break
    default:
      unknownMessage('panda-capture', msg)
  }
})
