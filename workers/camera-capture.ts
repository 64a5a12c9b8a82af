/**
 * camera-capture worker: owns one camera's Channel Access monitors. Reads the driver's frame size and data type,
 * makes the frame ring (posted to the supervisor, which starts the frame writer on it), subscribes to
 * `<prefix><image>ArrayData` (each update copied by libca straight into a ring slot) and `UniqueId_RBV`, and feeds
 * CameraCaptureLogic. Its own preemptive CA context is destroyed before the thread exits, on every path (a thread that
 * exits with a live libca context crashes the process).
 */
import { defaults } from '../config/index.js'
import { CaChannel, CaContext, destroyCaContext, type CaMonitor, type CaRawUpdate } from '../src/backends/index.js'
import { ErrorCode, FlyScanError, toWire } from '../src/errors.js'
import { frameBytes, frameDtypeOfCode, FRAME_DTYPE_NAMES, ND_DATA_TYPES, type FrameShape, type NdDataType } from '../src/hdf5/index.js'
import { HistogramSet, nowNs } from '../src/metrics/index.js'
import { DbrBase, DbrClass, dbrSize, dbrType, decodeDbr } from '../src/parsers/index.js'
import { CameraCaptureLogic, type CaptureCounters, type FrameUpdate } from '../src/pipeline/index.js'
import type { CameraCaptureCounters, CameraCaptureData, CameraCaptureDown, CameraCaptureUp } from '../src/protocol/index.js'
import { attachSlotWriter, createSlotRing } from '../src/shm/index.js'
import { startWorker, unknownMessage } from './runtime.js'

const { data, port } = startWorker<CameraCaptureData, CameraCaptureUp, CameraCaptureDown>('camera-capture', {
  beforeExit: { run: destroyCaContext, timeoutMs: 2 * defaults.ca.circuitCloseTimeoutMs }
})

const histograms = new HistogramSet()
const driver = `${data.prefix}${data.driver}`
const image = `${data.prefix}${data.image}`
const arrayDataPv = `${image}ArrayData`
const uniqueIdPv = `${image}UniqueId_RBV`

/** The CA element type that carries each pixel type. */
const CA_BASE: Readonly<Partial<Record<NdDataType, DbrBase>>> = {
  Int8: DbrBase.CHAR,
  UInt8: DbrBase.CHAR,
  Int16: DbrBase.SHORT,
  UInt16: DbrBase.SHORT,
  Int32: DbrBase.LONG,
  UInt32: DbrBase.LONG,
  Float32: DbrBase.FLOAT,
  Float64: DbrBase.DOUBLE
}

const channels: CaChannel[] = []
let logic: CameraCaptureLogic | undefined
let ended: Promise<void> | undefined
const timers: NodeJS.Timeout[] = []

function wireCounters (c: CaptureCounters): CameraCaptureCounters {
  return { ...c, firstUniqueId: c.firstUniqueId ?? -1, lastUniqueId: c.lastUniqueId ?? -1 }
}

const emptyCounters: CaptureCounters = { received: 0, dropped: 0, stale: 0, unpaired: 0, uniqueIdGaps: 0, firstUniqueId: undefined, lastUniqueId: undefined }

function counters (): CaptureCounters {
  return logic?.counters() ?? emptyCounters
}

/** Connect `names` in parallel; one error naming every PV that did not connect. */
async function connect (names: readonly string[]): Promise<CaChannel[]> {
  const made = names.map((n) => new CaChannel(n))
  channels.push(...made)
  const outcomes = await Promise.allSettled(made.map(async (c) => { await c.waitConnected(data.connectTimeoutMs) }))
  const failed = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [`${names[i] ?? '?'}: ${o.reason instanceof Error ? o.reason.message : String(o.reason)}`] : []))
  if (failed.length > 0) {
    throw new FlyScanError(ErrorCode.NOT_CONNECTED, `camera ${data.name}: ${failed.length} PV(s) did not connect: ${failed.join('; ')}`,
      { details: { camera: data.name, prefix: data.prefix } })
  }
  return made
}

/**
 * The driver's frame size and data type (its ArraySize readbacks are valid before the first frame, the plugin's are
 * not). The channels are returned open: the caller clears them once the monitors' channels are connected, because a
 * channel created just after the last one to a server was cleared can wait 10 s in libca (docs/channel-access.md).
 */
async function readShape (): Promise<{ shape: FrameShape, channels: CaChannel[] }> {
  const names = [`${driver}ArraySizeX_RBV`, `${driver}ArraySizeY_RBV`, `${driver}DataType_RBV`]
  const made = await connect(names)
  const values = await Promise.all(made.map(async (c) => (await c.get({ timeoutMs: data.connectTimeoutMs })).value[0] as number))
  const [width, height, code] = values as [number, number, number]
  if (!(width > 0 && height > 0)) {
    throw new FlyScanError(ErrorCode.DETECTOR,
      `camera ${data.name}: ${names[0] ?? ''} = ${width}, ${names[1] ?? ''} = ${height}: the driver reports no frame size (is the camera connected to its IOC?)`,
      { details: { camera: data.name, width, height } })
  }
  const dtype = frameDtypeOfCode(code)
  if (dtype === undefined) {
    throw new FlyScanError(ErrorCode.DETECTOR,
      `camera ${data.name}: ${names[2] ?? ''} is ${ND_DATA_TYPES[code] ?? `code ${code}`}; tst-fly writes ${FRAME_DTYPE_NAMES.join(', ')}`,
      { details: { camera: data.name, dataType: code } })
  }
  return { shape: { width, height, dtype: dtype.name }, channels: made }
}

function slotsFor (bytes: number): number {
  if (data.slots !== undefined) return data.slots
  let slots = data.minSlots
  while (slots * 2 <= data.maxSlots && slots * 2 * bytes <= data.ringBytes) slots *= 2
  return slots
}

/** One ArrayData update as the logic sees it: the header (for the timestamp) is decoded, the value copied on demand. */
class RawFrame implements FrameUpdate {
  valueBytes = 0
  count = 0
  epicsSec = 0
  epicsNsec = 0
  #update: CaRawUpdate | undefined
  readonly #header = new Uint8Array(64)

  set (update: CaRawUpdate): void {
    this.#update = update
    this.valueBytes = update.valueBytes
    this.count = update.count
    const n = Math.min(update.byteLength, dbrSize(update.type, 1))
    update.copyTo(this.#header, 0, n)
    const stamp = decodeDbr(update.type, n < dbrSize(update.type, 1) ? 0 : 1, this.#header, true).stamp
    this.epicsSec = stamp?.secPastEpoch ?? 0
    this.epicsNsec = stamp?.nsec ?? 0
  }

  copyTo (dest: Uint8Array): void {
    this.#update?.copyTo(dest)
  }
}

function fail (err: unknown): void {
  port.post({ kind: 'error', error: toWire(err) })
  end().catch(() => {})
}

async function start (): Promise<void> {
  const context = CaContext.get(data.ca)
  // libca's asynchronous exceptions (a lost circuit) reach this worker as connection changes too: ArrayData's
  // disconnect is reported below with the frame count; nothing else here writes to the IOC.
  context.onException(() => {})
  const { shape, channels: driverChannels } = await readShape()
  const bytes = frameBytes(shape)
  const ringBuffer = createSlotRing({ name: `${data.name}→frame-writer`, policy: 'drop-newest', slots: slotsFor(bytes), slotBytes: bytes })
  const ring = attachSlotWriter(ringBuffer)
  port.post({ kind: 'shape', width: shape.width, height: shape.height, dtype: shape.dtype, ring: ringBuffer })
  const capture = new CameraCaptureLogic({
    ring,
    shape,
    arrayDataPv,
    uniqueIdPv,
    histograms,
    pairTimeoutMs: data.pairTimeoutMs,
    uniqueIdHistory: data.uniqueIdHistory,
    events: { ready: () => port.post({ kind: 'ready' }) }
  })
  logic = capture
  const [arrayData, uniqueId] = await connect([arrayDataPv, uniqueIdPv]) as [CaChannel, CaChannel]
  await Promise.all(driverChannels.map(async (c) => { await c.clear() }))
  const base = CA_BASE[shape.dtype] as DbrBase
  const raw = new RawFrame()
  const monitors: CaMonitor[] = []
  const onError = (err: FlyScanError): void => { fail(err) }
  monitors.push(arrayData.monitorCopy(dbrType(base, DbrClass.TIME), 0, (update) => {
    const arrivalNs = nowNs()
    try {
      raw.set(update)
      capture.onArrayData(raw, arrivalNs)
    } catch (err) {
      fail(err)
    }
  }, { onError }))
  monitors.push(uniqueId.monitor((p) => {
    const stamp = p.stamp
    capture.onUniqueId(p.value[0] as number, stamp?.secPastEpoch ?? 0, stamp?.nsec ?? 0)
  }, { type: dbrType(DbrBase.LONG, DbrClass.TIME), onError }))
  arrayData.onConnectionChange((state) => {
    if (state !== 'disconnected') return
    fail(new FlyScanError(ErrorCode.NOT_CONNECTED,
      `camera ${data.name}: ${arrayDataPv} disconnected (camera IOC gone?) after ${capture.counters().received} frames received`,
      { details: { camera: data.name, pv: arrayDataPv, received: capture.counters().received } }))
  })
  timers.push(setInterval(() => { capture.poll() }, Math.max(1, data.pairTimeoutMs / 2)))
  let last = -1
  timers.push(setInterval(() => {
    const c = capture.counters()
    const sum = c.received + c.dropped + c.stale
    if (sum === last) return
    last = sum
    port.post({ kind: 'progress', counters: wireCounters(c) })
  }, data.progressPeriodMs))
}

/** Unsubscribe, publish what waits, close the ring, report, destroy the CA context, let the thread exit. Idempotent. */
function end (): Promise<void> {
  ended ??= (async () => {
    for (const t of timers) clearInterval(t)
    await Promise.allSettled(channels.map(async (c) => { await c.clear() }))
    logic?.finish()
    port.post({ kind: 'stats', id: 0, histograms: histograms.encode(), counters: { ...wireCounters(counters()) } })
    port.post({ kind: 'closed', counters: wireCounters(counters()) })
    await destroyCaContext()
    port.release()
  })()
  return ended
}

port.onMessage((msg) => {
  switch (msg.kind) {
    case 'stats':
      port.post({ kind: 'stats', id: msg.id, histograms: histograms.encode(), counters: { ...wireCounters(counters()) } })
      break
    case 'close':
      end().catch((err: unknown) => { port.post({ kind: 'error', error: toWire(err) }) })
      break
    default:
      unknownMessage('camera-capture', msg)
  }
})

start().catch(fail)
