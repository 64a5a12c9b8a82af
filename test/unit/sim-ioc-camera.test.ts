import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { DbrBase, EPICS_EPOCH_OFFSET_S, epicsTimeFromMs, type DbrValue } from '../../src/parsers/index.js'
import { ErrorCode } from '../../src/errors.js'
import {
  FRAME_POOL, ManualClock, SimCamera, charsFromString, formatFileTemplate, stringFromChars,
  type CameraOptions, type PvState, type ServedPv
} from '../../src/sim/ioc/index.js'

const PREFIX = 'XF:31ID1-ES{GigE-Cam:1}'

interface Rig {
  clock: ManualClock
  camera: SimCamera
  t0: number
  pv: (suffix: string) => ServedPv
  put: (suffix: string, v: number | string) => Promise<void>
  get: (suffix: string) => number
  text: (suffix: string) => string
}

function rig (options: Partial<CameraOptions> = {}, clock = new ManualClock()): Rig {
  const camera = new SimCamera({ prefix: PREFIX, ...options }, clock)
  const pvs = new Map(camera.pvs().map((p) => [p.name.slice(PREFIX.length), p]))
  const pv = (suffix: string): ServedPv => {
    const p = pvs.get(suffix)
    if (p === undefined) throw new Error(`no PV ${suffix}`)
    return p
  }
  const text = (suffix: string): string => {
    const p = pv(suffix)
    const value = p.get().value
    if (p.base === DbrBase.ENUM) return p.metadata().enumStrings?.[value[0] as number] ?? ''
    if (p.base === DbrBase.CHAR) return stringFromChars(value)
    return String(value[0])
  }
  /** A client's write, converted as the server would: enum by state name, long strings as CHAR arrays. */
  const put = (suffix: string, v: number | string): Promise<void> => {
    const p = pv(suffix)
    switch (p.base) {
      case DbrBase.ENUM: {
        const state = typeof v === 'number' ? v : (p.metadata().enumStrings ?? []).indexOf(v)
        if (state < 0) throw new Error(`${suffix} has no state ${v}`)
        return p.put(Uint16Array.of(state))
      }
      case DbrBase.CHAR: return p.put(charsFromString(String(v), p.maxCount))
      case DbrBase.STRING: return p.put([String(v)])
      case DbrBase.LONG: return p.put(Int32Array.of(Number(v)))
      default: return p.put(Float64Array.of(Number(v)))
    }
  }
  return { clock, camera, t0: clock.nowMs(), pv, put, get: (s) => pv(s).get().value[0] as number, text }
}

function track (p: Promise<void>): { done: boolean, error: unknown } {
  const s = { done: false, error: undefined as unknown }
  p.then(() => { s.done = true }, (err: unknown) => { s.error = err })
  return s
}
const flush = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

/** Every value a PV posts. */
function record (pv: ServedPv): PvState[] {
  const out: PvState[] = []
  pv.subscribe((s) => out.push(s))
  return out
}

/** The UniqueId stamped into the first 4 bytes of a frame. */
function stampedId (frame: DbrValue): number {
  const v = frame as Uint8Array | Int16Array
  const bytes = new Uint8Array(v.buffer, v.byteOffset, 4)
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true)
}

const msOf = (s: PvState): number => (s.stamp.secPastEpoch + EPICS_EPOCH_OFFSET_S) * 1000 + s.stamp.nsec / 1e6

t.test('identity, sizes and each _RBV following its setpoint after processing, clamped to the camera', async t => {
  const { put, get, text, pv } = rig()
  t.equal(text('cam1:Model_RBV'), 'Manta G-125')
  t.equal(text('cam1:Manufacturer_RBV'), 'Allied Vision')
  t.equal(get('cam1:MaxSizeX_RBV'), 728)
  t.equal(get('cam1:MaxSizeY_RBV'), 544)
  await put('cam1:AcquireTime', 0.005)
  t.equal(get('cam1:AcquireTime_RBV'), 0.005)
  await put('cam1:AcquireTime', 1e-7)
  t.equal(get('cam1:AcquireTime_RBV'), 10e-6, 'clamped to the shortest exposure')
  t.equal(get('cam1:AcquireTime'), 1e-7, 'the setpoint keeps what was written')
  await put('cam1:AcquireTime', 100)
  t.equal(get('cam1:AcquireTime_RBV'), 60)
  await put('cam1:NumImages', 0)
  t.equal(get('cam1:NumImages_RBV'), 1)
  for (const [suffix, state] of [['cam1:ImageMode', 'Continuous'], ['cam1:TriggerMode', 'On'], ['cam1:TriggerSource', 'Line1'],
    ['cam1:ExposureMode', 'TriggerWidth'], ['HDF1:FileWriteMode', 'Stream']] as const) {
    await put(suffix, state)
    t.equal(text(`${suffix}_RBV`), state, `${suffix}_RBV`)
  }
  t.same(pv('cam1:DetectorState_RBV').metadata().enumStrings,
    ['Idle', 'Acquire', 'Readout', 'Correct', 'Saving', 'Aborting', 'Error', 'Waiting', 'Initializing', 'Disconnected', 'Aborted'])
  t.same(pv('cam1:DataType').metadata().enumStrings, ['Int8', 'UInt8', 'Int16', 'UInt16', 'Int32', 'UInt32', 'Int64', 'UInt64', 'Float32', 'Float64'])
  t.equal(text('cam1:DataType_RBV'), 'UInt8')
  await t.rejects(put('cam1:DataType', 'Float32'), { code: ErrorCode.BAD_INPUT, message: /produces UInt8 or UInt16, not Float32/ })
  t.equal(text('cam1:DataType_RBV'), 'UInt8', 'RBV unchanged after a refused type')
  t.equal(pv('cam1:Acquire_RBV').writable, false)
  t.equal(pv('image1:ArrayData').base, DbrBase.CHAR)
  t.equal(pv('image1:ArrayData').maxCount, 728 * 544)
  t.equal(pv('HDF1:FilePath').base, DbrBase.CHAR, 'long strings are CHAR waveforms')
  t.equal(pv('HDF1:FilePath').maxCount, 256)
})

t.test('ImageMode Single: one frame when the exposure ends; Acquire returns to Done and the put resolves then', async t => {
  const { clock, t0, put, get, text, pv } = rig()
  await put('cam1:ImageMode', 'Single')
  await put('cam1:AcquireTime', 0.01)
  const states = record(pv('cam1:DetectorState_RBV'))
  const acquire = record(pv('cam1:Acquire'))
  const frames = record(pv('image1:ArrayData'))
  const done = track(put('cam1:Acquire', 1))
  t.equal(get('cam1:Acquire_RBV'), 1)
  t.equal(pv('cam1:Acquire_RBV').get().severity, 1, 'Acquiring is MINOR, as in ADBase.template')
  clock.advance(9)
  await flush()
  t.equal(done.done, false)
  t.equal(frames.length, 0)
  clock.advance(1)
  await flush()
  t.equal(done.done, true, 'resolved at the end of the acquisition')
  t.equal(frames.length, 1)
  const frame = frames[0] as PvState
  t.equal(frame.value.length, 728 * 544, 'width·height elements')
  t.ok(frame.value instanceof Uint8Array, 'Mono8')
  t.equal(stampedId(frame.value), 1, 'UniqueId in the first 4 bytes')
  t.same(frame.stamp, epicsTimeFromMs(t0 + 10), 'stamped when the exposure ended')
  t.equal(get('image1:UniqueId_RBV'), 1)
  t.equal(get('image1:ArrayCounter_RBV'), 1)
  t.equal(get('image1:ArraySize0_RBV'), 728)
  t.equal(get('image1:ArraySize1_RBV'), 544)
  t.equal(get('image1:NDimensions_RBV'), 2)
  t.equal(text('image1:DataType_RBV'), 'UInt8')
  t.ok(Math.abs(get('image1:TimeStamp_RBV') - ((t0 + 10) / 1000 - EPICS_EPOCH_OFFSET_S)) < 1e-6, 'TimeStamp_RBV: EPICS-epoch seconds')
  t.equal(get('cam1:ArrayCounter_RBV'), 1)
  t.equal(get('cam1:NumImagesCounter_RBV'), 1)
  t.equal(get('cam1:ArraySizeX_RBV'), 728)
  t.same(states.map((s) => s.value[0]), [1, 0], 'DetectorState Acquire, then Idle')
  t.same(acquire.map((s) => s.value[0]), [1, 0], 'Acquire back to 0 (Done)')
  t.equal(get('cam1:Acquire_RBV'), 0)
})

t.test('ImageMode Multiple: NumImages frames at max(AcquirePeriod, AcquireTime + deadtime)', async t => {
  const { clock, t0, put, get, pv } = rig()
  await put('cam1:ImageMode', 'Multiple')
  await put('cam1:NumImages', 5)
  await put('cam1:AcquireTime', 0.01)
  await put('cam1:AcquirePeriod', 0.1)
  const ids = record(pv('image1:UniqueId_RBV'))
  const done = track(put('cam1:Acquire', 1))
  clock.advance(409)
  await flush()
  t.equal(done.done, false)
  clock.advance(1)
  await flush()
  t.equal(done.done, true)
  t.same(ids.map((s) => s.value[0]), [1, 2, 3, 4, 5])
  t.same(ids.map((s) => Math.round(msOf(s) - t0)), [10, 110, 210, 310, 410], 'frame k at k·period + exposure')
  t.equal(get('cam1:NumImagesCounter_RBV'), 5)

  // A period shorter than exposure + deadtime: the deadtime wins (63 µs for a Manta G-125).
  await put('cam1:AcquirePeriod', 0)
  await put('cam1:AcquireTime', 0.001)
  await put('cam1:NumImages', 3)
  const start = clock.nowMs()
  const fast = put('cam1:Acquire', 1)
  clock.advance(10)
  await fast
  t.same(ids.slice(5).map((s) => +(msOf(s) - start).toFixed(3)), [1, 2.063, 3.126])
  t.equal(get('cam1:NumImagesCounter_RBV'), 3, 'reset at each start')
  t.equal(get('cam1:ArrayCounter_RBV'), 8, 'ArrayCounter goes on')
})

t.test('frames faster than the timer: several per tick, each with its own timestamp, average rate kept', async t => {
  // Node rounds timers up to 1 ms; 2500 frames/s is 0.4 ms per frame.
  const clock = new ManualClock({ minDelayMs: 1 })
  const { put, get, pv, t0 } = rig({}, clock)
  await put('cam1:ImageMode', 'Multiple')
  await put('cam1:NumImages', 2500)
  await put('cam1:AcquireTime', 0.0003)
  await put('cam1:AcquirePeriod', 0.0004)
  const frames: Array<{ ms: number, id: number, buffer: ArrayBufferLike }> = []
  pv('image1:ArrayData').subscribe((s) => frames.push({ ms: msOf(s), id: stampedId(s.value), buffer: (s.value as Uint8Array).buffer }))
  const firedBefore = clock.fired
  const done = track(put('cam1:Acquire', 1))
  clock.advance(999)
  await flush()
  t.equal(done.done, false)
  clock.advance(1)
  await flush()
  t.equal(done.done, true, 'the last frame arrives at 0.3 + 2499 × 0.4 = 999.9 ms')
  t.equal(frames.length, 2500)
  t.same(frames.map((f) => f.id), Array.from({ length: 2500 }, (_, i) => i + 1), 'UniqueIds without a gap')
  t.ok(frames.every((f, i) => Math.abs(f.ms - (t0 + 0.3 + 0.4 * i)) < 0.001), 'frame k stamped at 0.3 + 0.4k ms')
  const ticks = clock.fired - firedBefore
  t.ok(ticks <= 1001 && ticks >= 900, `about one tick per ms (${ticks} ticks for 2500 frames)`)
  t.equal(new Set(frames.map((f) => f.buffer)).size, FRAME_POOL, `frames reuse ${FRAME_POOL} buffers: no allocation per frame`)
  t.equal(get('cam1:ArrayCounter_RBV'), 2500)
})

t.test('ImageMode Continuous runs until Acquire=0; the first put resolves then', async t => {
  const { clock, put, get } = rig()
  await put('cam1:ImageMode', 'Continuous')
  await put('cam1:AcquireTime', 0.01)
  await put('cam1:AcquirePeriod', 0.1)
  const run = track(put('cam1:Acquire', 1))
  const again = track(put('cam1:Acquire', 1))
  clock.advance(1000)
  await flush()
  t.equal(get('cam1:NumImagesCounter_RBV'), 10)
  t.same([run.done, again.done], [false, false])
  await put('cam1:Acquire', 0)
  await flush()
  t.same([run.done, again.done], [true, true], 'both Acquire=1 puts complete when acquisition stops')
  t.equal(get('cam1:Acquire_RBV'), 0)
  t.equal(get('cam1:DetectorState_RBV'), 0)
  clock.advance(1000)
  t.equal(get('cam1:NumImagesCounter_RBV'), 10, 'no frames after the stop')
})

t.test('frames reach a plugin only with ArrayCallbacks, its EnableCallbacks and its NDArrayPort', async t => {
  const { clock, put, get } = rig()
  await put('cam1:ImageMode', 'Single')
  const shoot = async (): Promise<void> => {
    const p = put('cam1:Acquire', 1)
    clock.advance(1000)
    await p
  }
  await shoot()
  t.same([get('cam1:ArrayCounter_RBV'), get('image1:ArrayCounter_RBV'), get('HDF1:ArraySize0_RBV')], [1, 1, 728])
  await put('cam1:ArrayCallbacks', 'Disable')
  await shoot()
  t.same([get('cam1:ArrayCounter_RBV'), get('image1:ArrayCounter_RBV')], [2, 1], 'no callbacks: the driver counts, plugins see nothing')
  await put('cam1:ArrayCallbacks', 'Enable')
  await put('image1:EnableCallbacks', 'Disable')
  await shoot()
  t.same([get('image1:ArrayCounter_RBV'), get('image1:UniqueId_RBV')], [1, 1])
  await put('image1:EnableCallbacks', 'Enable')
  await put('image1:NDArrayPort', 'OTHER')
  await shoot()
  t.equal(get('image1:ArrayCounter_RBV'), 1, 'a plugin fed from another port sees nothing')
  await put('image1:NDArrayPort', 'VMB1')
  await put('cam1:ArrayCounter', 100)
  t.equal(get('cam1:ArrayCounter_RBV'), 100, 'writing ArrayCounter sets the count')
  await shoot()
  t.same([get('image1:UniqueId_RBV'), get('image1:ArrayCounter_RBV')], [101, 2])
})

t.test('a 16-bit camera: SHORT ArrayData, 12-bit values, UniqueId in the first 4 bytes', async t => {
  const { clock, put, pv, text, get } = rig({ dataType: 'UInt16', width: 64, height: 48 })
  t.equal(pv('image1:ArrayData').base, DbrBase.SHORT)
  t.equal(pv('image1:ArrayData').maxCount, 64 * 48)
  await put('cam1:ImageMode', 'Multiple')
  await put('cam1:NumImages', 2)
  const frames = record(pv('image1:ArrayData'))
  const p = put('cam1:Acquire', 1)
  clock.advance(1000)
  await p
  const first = frames[0]?.value as Int16Array
  t.ok(first instanceof Int16Array)
  t.equal(first.length, 64 * 48)
  t.equal(stampedId(first), 1)
  t.ok(first.subarray(2).every((v) => v >= 0 && v <= 4095), 'Mono12 values')
  t.equal(stampedId(frames[1]?.value as Int16Array), 2)
  t.equal(text('image1:DataType_RBV'), 'UInt16')
  t.equal(get('cam1:ArraySize_RBV'), 64 * 48 * 2, 'bytes per frame')
  await put('cam1:DataType', 'UInt8')
  t.equal(text('cam1:DataType_RBV'), 'UInt8', 'an 8-bit frame fits the SHORT waveform')
})

t.test('frames show a pattern that changes with the frame number', async t => {
  const camera = new SimCamera({ prefix: PREFIX, width: 100, height: 80 }, new ManualClock())
  const pool = camera.frames('UInt8') as Uint8Array[]
  t.equal(pool.length, FRAME_POOL)
  const brightest = (f: Uint8Array): number => f.subarray(4).reduce((best, v, i, a) => v > (a[best] as number) ? i : best, 0) + 4
  const spots = new Set(pool.map(brightest))
  t.equal(spots.size, FRAME_POOL, 'the bright spot moves from frame to frame')
  t.ok(pool.every((f) => Math.max(...f.subarray(4)) >= 200), 'a bright spot')
  t.ok(pool.every((f) => (f[100 * 40] as number) < 128), 'on a dimmer background')
  t.equal(camera.frames('UInt8'), camera.frames('UInt8'), 'computed once')
})

t.test('frames are computed with the camera: Acquire on a 2048 x 2048 camera computes none and returns at once', async t => {
  const { clock, camera, put, pv } = rig({ dataType: 'UInt16', width: 2048, height: 2048 })
  t.equal(camera.hasFrames('UInt16'), true, 'the configured type\'s frames exist before the first Acquire')
  t.equal(camera.hasFrames('UInt8'), false, 'the other type\'s only after a DataType write')
  const pool = camera.frames('UInt16')
  const frames = record(pv('image1:ArrayData'))
  await put('cam1:ImageMode', 'Single')
  const t0 = performance.now()
  const done = put('cam1:Acquire', 1)
  const syncMs = performance.now() - t0
  // Computing 8 frames of 8 MiB at this point took about a second and stalled every client of the IOC (the
  // "Virtual circuit disconnect" of a libca client that cleared its last channel meanwhile). Starting now only posts
  // a few records.
  t.ok(syncMs < 150, `Acquire=1 returned after ${syncMs.toFixed(1)} ms`)
  clock.advance(1000)
  await done
  t.equal(frames.length, 1)
  t.equal((frames[0]?.value as Int16Array).buffer, (pool[1] as Int16Array).buffer, 'the frame served is one of the precomputed ones')
})

t.test('DataType: the other type\'s frames are computed a frame per event-loop turn; the write, and an Acquire, wait for them', async t => {
  const { clock, camera, put, get, text, pv } = rig({ dataType: 'UInt16', width: 512, height: 512 })
  await put('cam1:ImageMode', 'Single')
  const frames = record(pv('image1:ArrayData'))
  let turns = 0
  let ticking = true
  const tick = (): void => { turns++; if (ticking) setImmediate(tick) }
  setImmediate(tick)
  const written = track(put('cam1:DataType', 'UInt8'))
  t.equal(text('cam1:DataType_RBV'), 'UInt8', 'the readback follows at once')
  t.equal(camera.hasFrames('UInt8'), false, 'the frames are not computed inside the write')
  const acquired = track(put('cam1:Acquire', 1))
  t.equal(get('cam1:Acquire_RBV'), 0, 'the acquisition waits for the frames')
  while (!written.done && written.error === undefined) await flush()
  ticking = false
  t.equal(written.error, undefined)
  t.ok(turns >= 8, `the event loop turned ${turns} times while the 8 frames were computed`)
  t.equal(camera.hasFrames('UInt8'), true)
  await flush()
  t.equal(get('cam1:Acquire_RBV'), 1, 'then it starts')
  clock.advance(1000)
  await flush()
  t.equal(acquired.done, true)
  const frame = frames[0]?.value as Int16Array
  t.ok(frame.subarray(2).every((v) => v >= 0 && v <= 255), 'an 8-bit frame in the SHORT waveform')
  // Acquire=1 then 0 before the frames exist: nothing starts, both writes complete.
  const other = rig({ width: 256, height: 256 })
  const again = track(other.put('cam1:DataType', 'UInt16'))
  const start = track(other.put('cam1:Acquire', 1))
  await other.put('cam1:Acquire', 0)
  while (!again.done) await flush()
  await flush()
  t.equal(start.done, true, 'the Acquire=1 write completes')
  t.same([other.get('cam1:Acquire_RBV'), other.get('cam1:ArrayCounter_RBV')], [0, 0], 'no acquisition after Acquire went back to 0')
})

t.test('close() during the computation of a new type\'s frames fails the DataType write', async t => {
  const { camera, put } = rig({ width: 256, height: 256 })
  const written = put('cam1:DataType', 'UInt16')
  camera.close()
  await t.rejects(written, { code: ErrorCode.CANCELLED })
})

t.test('external triggers: frames only on Line1 edges; a trigger during exposure + readout is missed and counted', async t => {
  const { clock, camera, put, get, pv, t0 } = rig()
  await put('cam1:TriggerMode', 'On')
  await put('cam1:TriggerSource', 'Line1')
  await put('cam1:ImageMode', 'Multiple')
  await put('cam1:NumImages', 3)
  await put('cam1:AcquireTime', 0.001)
  t.equal(camera.externalTrigger(), 'ignored', 'not acquiring yet')
  const ids = record(pv('image1:UniqueId_RBV'))
  const done = track(put('cam1:Acquire', 1))
  clock.advance(1000)
  t.equal(get('cam1:NumImagesCounter_RBV'), 0, 'no frame without a trigger')
  const t1 = clock.nowMs()
  t.equal(camera.externalTrigger({ atMs: t1 }), 'accepted')
  t.equal(camera.externalTrigger({ atMs: t1 + 0.5 }), 'missed', 'during the 1 ms exposure')
  t.equal(camera.externalTrigger({ atMs: t1 + 1.05 }), 'missed', 'during the 63 µs readout')
  t.equal(camera.externalTrigger({ line: 'Line2', atMs: t1 + 1.1 }), 'ignored', 'another input')
  t.equal(camera.externalTrigger({ atMs: t1 + 1.1 }), 'accepted')
  clock.advance(5)
  t.equal(camera.externalTrigger(), 'accepted')
  clock.advance(5)
  await flush()
  t.equal(done.done, true, 'Acquire completes with the third frame')
  t.same(ids.map((s) => Math.round((msOf(s) - t0) * 1000) / 1000), [1001, 1002.1, 1006], 'each frame when its exposure ended')
  t.equal(camera.externalTrigger(), 'ignored', 'all frames taken')
  t.same(camera.stats, { frames: 3, missedTriggers: 2, ignoredTriggers: 3 })
})

t.test('TriggerWidth exposes for the gate; Software triggers come from TriggerSoftware', async t => {
  const { clock, camera, put, pv, t0 } = rig()
  await put('cam1:TriggerMode', 'On')
  await put('cam1:TriggerSource', 'Line1')
  await put('cam1:ExposureMode', 'TriggerWidth')
  await put('cam1:ImageMode', 'Continuous')
  const ids = record(pv('image1:UniqueId_RBV'))
  track(put('cam1:Acquire', 1))
  t.equal(camera.externalTrigger({ widthS: 0.005 }), 'accepted')
  clock.advance(4)
  t.equal(ids.length, 0)
  clock.advance(1)
  t.equal(Math.round(msOf(ids[0] as PvState) - t0), 5, 'frame after the 5 ms gate')
  await put('cam1:TriggerSource', 'Software')
  await put('cam1:Acquire', 0)
  track(put('cam1:Acquire', 1))
  await put('cam1:TriggerSoftware', 1)
  t.equal(pv('cam1:TriggerSoftware').get().value[0], 0, 'TriggerSoftware resets')
  clock.advance(100)
  t.equal(ids.length, 2)
  t.equal(camera.externalTrigger(), 'ignored', 'Line1 does nothing with TriggerSource Software')
  await put('cam1:Acquire', 0)
})

t.test('TriggerMode On with TriggerSource Freerun runs on the internal timer', async t => {
  const { clock, put, get } = rig()
  await put('cam1:TriggerMode', 'On')
  await put('cam1:TriggerSource', 'Freerun')
  await put('cam1:ImageMode', 'Multiple')
  await put('cam1:NumImages', 4)
  const p = put('cam1:Acquire', 1)
  clock.advance(1000)
  await p
  t.equal(get('cam1:NumImagesCounter_RBV'), 4)
})

t.test('HDF1 before any frame: Capture needs an array unless LazyOpen', async t => {
  const { put, get, text } = rig()
  await put('HDF1:FileWriteMode', 'Stream')
  await put('HDF1:Capture', 1)
  t.equal(get('HDF1:Capture_RBV'), 0)
  t.equal(get('HDF1:Capture'), 0)
  t.equal(get('HDF1:WriteStatus'), 1)
  t.match(text('HDF1:WriteMessage'), /must collect an array to get dimensions first/)
  await put('HDF1:FileWriteMode', 'Single')
  await put('HDF1:Capture', 1)
  t.match(text('HDF1:WriteMessage'), /capture not supported in Single mode/)
  t.equal(get('HDF1:ArraySize0_RBV'), 0, 'the warm-up check of DESIGN.md §7 sees 0')
})

t.test('HDF1 FilePath: trailing slash, FilePathExists_RBV, CreateDirectory as ADCore', async t => {
  const dir = t.testdir({ existing: {} })
  const { put, get, text, pv } = rig()
  await put('HDF1:FilePath', join(dir, 'existing'))
  t.equal(text('HDF1:FilePath_RBV'), `${join(dir, 'existing')}/`)
  t.equal(get('HDF1:FilePathExists_RBV'), 1)
  const missing = join(dir, 'a', 'b')
  await put('HDF1:FilePath', missing)
  t.equal(get('HDF1:FilePathExists_RBV'), 0)
  t.equal(pv('HDF1:FilePathExists_RBV').get().severity, 2, 'No is MAJOR')
  t.notOk(existsSync(missing), 'CreateDirectory 0 creates nothing')
  await put('HDF1:CreateDirectory', -2)
  await put('HDF1:FilePath', `${missing}/`)
  t.ok(existsSync(missing), 'CreateDirectory -2 creates the last two levels')
  t.equal(get('HDF1:FilePathExists_RBV'), 1)
  t.equal(text('HDF1:FilePath_RBV'), `${missing}/`)
})

t.test('HDF1 in Stream mode follows the ophyd-async ADHDFWriter sequence', async t => {
  const dir = t.testdir({})
  const { clock, put, get, text, pv } = rig()
  // ADHDFWriter.open(): CreateDirectory first, then the rest, FilePathExists checked, NumCapture 0, Capture=1.
  await put('HDF1:CreateDirectory', -1)
  await Promise.all([
    put('HDF1:NumExtraDims', 0), put('HDF1:LazyOpen', 1), put('HDF1:SWMRMode', 1), put('HDF1:FilePath', join(dir, 'run1')),
    put('HDF1:FileName', 'scan'), put('HDF1:FileTemplate', '%s/%s.h5'), put('HDF1:FileWriteMode', 'Stream'), put('HDF1:XMLFileName', '')
  ])
  t.equal(get('HDF1:FilePathExists_RBV'), 1)
  t.equal(get('HDF1:NumFramesChunks_RBV'), 1)
  await put('HDF1:NumCapture', 0)
  const capture = track(put('HDF1:Capture', 1))
  t.equal(get('HDF1:Capture_RBV'), 1, 'capturing before any frame (LazyOpen)')
  t.equal(text('HDF1:WriteMessage'), 'Lazy Open...')
  t.equal(text('HDF1:FullFileName_RBV'), '', 'the file opens with the first frame')
  const captured = record(pv('HDF1:NumCaptured_RBV'))

  await put('cam1:ImageMode', 'Multiple')
  await put('cam1:NumImages', 5)
  const acquire = put('cam1:Acquire', 1)
  clock.advance(1000)
  await acquire
  t.same(captured.map((s) => s.value[0]), [1, 2, 3, 4, 5])
  t.equal(text('HDF1:FullFileName_RBV'), `${join(dir, 'run1')}//scan.h5`, 'FilePath_RBV has its slash, the template adds one')
  t.equal(get('HDF1:ArraySize0_RBV'), 728)
  t.equal(get('HDF1:ArraySize1_RBV'), 544)
  t.equal(get('HDF1:ArrayCounter_RBV'), 5)
  await flush()
  t.equal(capture.done, false, 'NumCapture 0: streams until Capture=0')

  // ADHDFWriter.close(): Capture=0 without waiting, then the first put completes.
  await put('HDF1:Capture', 0)
  await flush()
  t.equal(capture.done, true)
  t.equal(get('HDF1:Capture_RBV'), 0)
  t.equal(get('HDF1:WriteStatus'), 0)
})

t.test('HDF1 Stream with NumCapture stops by itself; AutoIncrement numbers the files', async t => {
  const dir = t.testdir({})
  const { clock, put, get, text } = rig()
  await put('cam1:ImageMode', 'Single')
  const shoot = async (): Promise<void> => { const p = put('cam1:Acquire', 1); clock.advance(100); await p }
  await shoot()
  await put('HDF1:FilePath', dir)
  await put('HDF1:FileName', 'img')
  await put('HDF1:FileNumber', 7)
  await put('HDF1:AutoIncrement', 1)
  await put('HDF1:FileWriteMode', 'Stream')
  await put('HDF1:NumCapture', 2)
  const capture = track(put('HDF1:Capture', 1))
  t.equal(text('HDF1:FullFileName_RBV'), `${dir}/img_007.h5`, 'opened at Capture=1 without LazyOpen (template %s%s_%3.3d.h5)')
  t.equal(get('HDF1:FileNumber_RBV'), 8, 'the number moves on when the file opens')
  t.equal(get('HDF1:FileNumber'), 8)
  await shoot()
  await flush()
  t.equal(capture.done, false)
  await shoot()
  await flush()
  t.equal(capture.done, true, 'stopped after NumCapture frames')
  t.equal(get('HDF1:NumCaptured_RBV'), 2)
  t.equal(get('HDF1:Capture'), 0)
  await shoot()
  t.equal(get('HDF1:NumCaptured_RBV'), 2, 'frames after the capture are not counted')

  await put('HDF1:FilePath', join(dir, 'nowhere'))
  await put('HDF1:Capture', 1)
  t.equal(get('HDF1:Capture_RBV'), 0, 'no directory: the file cannot open and capture does not start')
  t.match(text('HDF1:WriteMessage'), /^Error opening file: directory does not exist: /)
  t.equal(get('HDF1:WriteStatus'), 1)
})

t.test('HDF1 Capture and Single modes', async t => {
  const dir = t.testdir({})
  const { clock, put, get, text } = rig()
  await put('cam1:ImageMode', 'Single')
  const shoot = async (): Promise<void> => { const p = put('cam1:Acquire', 1); clock.advance(100); await p }
  await shoot()
  await put('HDF1:FilePath', dir)
  await put('HDF1:FileName', 'buf')
  await put('HDF1:FileWriteMode', 'Capture')
  await put('HDF1:NumCapture', 3)
  await put('HDF1:AutoSave', 1)
  const capture = track(put('HDF1:Capture', 1))
  for (let i = 0; i < 3; i++) await shoot()
  await flush()
  t.equal(capture.done, true, 'Capture mode ends when the buffer holds NumCapture arrays')
  t.equal(text('HDF1:FullFileName_RBV'), `${dir}/buf_000.h5`)
  t.equal(get('HDF1:NumCaptured_RBV'), 0, 'the buffer is written and freed')

  await put('HDF1:FileWriteMode', 'Single')
  await put('HDF1:AutoIncrement', 1)
  await shoot()
  t.equal(text('HDF1:FullFileName_RBV'), `${dir}/buf_000.h5`, 'AutoSave in Single mode writes each frame')
  await shoot()
  t.equal(text('HDF1:FullFileName_RBV'), `${dir}/buf_001.h5`)
  await put('HDF1:AutoSave', 0)
  await put('HDF1:WriteFile', 1)
  t.equal(text('HDF1:FullFileName_RBV'), `${dir}/buf_002.h5`, 'WriteFile writes the last array')
  t.equal(get('HDF1:WriteFile'), 0)
})

t.test('formatFileTemplate formats as epicsSnprintf does for file templates', async t => {
  t.equal(formatFileTemplate('%s%s_%3.3d.h5', '/d/', 'x', 7), '/d/x_007.h5')
  t.equal(formatFileTemplate('%s/%s.h5', '/d', 'x', 7), '/d/x.h5')
  t.equal(formatFileTemplate('%s%s_%06d.h5', '/d/', 'x', 42), '/d/x_000042.h5')
  t.equal(formatFileTemplate('%s%s%d%%', 'a', 'b', -3), 'ab-3%')
  t.equal(formatFileTemplate('%s%s_%5d', 'a', 'b', 12), 'ab_   12')
})

t.test('close rejects a pending Acquire and a pending Capture', async t => {
  const { camera, put, clock } = rig()
  await put('cam1:ImageMode', 'Single')
  const p = put('cam1:Acquire', 1)
  clock.advance(100)
  await p
  await put('HDF1:FileWriteMode', 'Stream')
  await put('HDF1:LazyOpen', 1)
  const capture = put('HDF1:Capture', 1)
  await put('cam1:ImageMode', 'Continuous')
  const acquire = put('cam1:Acquire', 1)
  camera.close()
  await t.rejects(acquire, { code: ErrorCode.CANCELLED })
  await t.rejects(capture, { code: ErrorCode.CANCELLED })
  t.equal(clock.pending, 0, 'no timer left')
  camera.close()
})
