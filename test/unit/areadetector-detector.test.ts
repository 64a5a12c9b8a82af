import t from 'tap'
import { ADVimba, StandardDetector, type ObservableController } from '../../src/areadetector/index.js'
import {
  VirtualClock, type DataKey, type DetectorWriter, type FrameCounters, type StreamAsset, type TriggerInfo, type WatcherUpdate
} from '../../src/devices/index.js'
import { callbackOnMockPut, getMockPutCalls, setMockPutProceeds, setMockValue } from '../../src/backends/index.js'
import { ErrorCode, FlyScanError } from '../../src/errors.js'

// ADVimba (VimbaController + StandardDetector) with every signal mocked (connect({ mock: true })), a fake camera
// scripted from put callbacks, and a fake DetectorWriter whose counters the test moves. The stall watchdog and the
// progress poll run on a VirtualClock, so the stall bounds pass in a few turns of the event loop.

/** A DetectorWriter driven by the test: frames "arrive" and "are written" when the test says so. */
class FakeWriter implements DetectorWriter {
  received = 0
  written = 0
  framesPerEvent = 1
  opened: Array<{ name: string, framesPerEvent: number, expectedFrames: number }> = []
  closed = 0
  aborted: string[] = []

  async open (name: string, framesPerEvent: number, expectedFrames: number): Promise<Record<string, DataKey>> {
    this.opened.push({ name, framesPerEvent, expectedFrames })
    this.framesPerEvent = framesPerEvent
    return { [name]: { source: 'test:', dtype: 'array', shape: [544, 728], external: 'STREAM:' } }
  }

  async getIndicesWritten (): Promise<number> { return Math.floor(this.written / this.framesPerEvent) }

  counters (): FrameCounters {
    return { received: this.received, written: this.written, dropped: 0, uniqueIdGaps: 0, firstUniqueId: undefined, lastUniqueId: undefined, bytesWritten: 0 }
  }

  async * collectStreamDocs (name: string, indicesWritten: number): AsyncIterable<StreamAsset> {
    yield ['stream_datum', { uid: 'd', stream_resource: name, indices: { start: 0, stop: indicesWritten }, seq_nums: { start: 1, stop: indicesWritten + 1 } }]
  }

  async close (): Promise<void> { this.closed++ }
  async abort (reason: string): Promise<void> { this.aborted.push(reason) }

  /** `n` frames arrive and are written (the camera's ArrayCounter_RBV follows when `camera` is given). */
  frames (n: number): void {
    this.received += n
    this.written += n
  }
}

const MARGIN_MS = 1000

/** A mocked ADVimba that acts like the simulated camera on Acquire, plus its writer. */
async function setup (options: { model?: string, statusMessage?: string, timeouts?: Record<string, number> } = {}) {
  const clock = new VirtualClock()
  const writer = new FakeWriter()
  const cam = new ADVimba('XF:31ID1-ES{GigE-Cam:1}', {
    name: 'manta1', model: options.model ?? 'Manta G-125', writer, clock, timeouts: { stallMarginMs: MARGIN_MS, ...options.timeouts }
  })
  await cam.connect({ mock: true })
  const d = cam.drv
  setMockValue(d.detectorState, 'Idle')
  setMockValue(d.acquire, false)
  // The driver: Acquire=1 starts waiting for triggers, Acquire=0 stops.
  callbackOnMockPut(d.acquire, (v) => { setMockValue(d.detectorState, v === true ? 'Waiting' : 'Idle') })
  return { cam, d, writer, clock }
}

const edge = (n: number, extra: Partial<TriggerInfo> = {}): TriggerInfo => ({ trigger: 'edge_trigger', numberOfEvents: n, livetime: 0.01, ...extra })
const p = async <T>(status: PromiseLike<T>): Promise<T> => await status
const tick = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

t.test('prepare writes the settings (TriggerMode last), resets ArrayCounter, enables callbacks, opens the writer once', async t => {
  const { cam, d, writer } = await setup()
  const order: string[] = []
  for (const [name, signal] of Object.entries({ imageMode: d.imageMode, numImages: d.numImages, triggerSource: d.triggerSource, exposureMode: d.exposureMode, acquireTime: d.acquireTime, triggerMode: d.triggerMode })) {
    callbackOnMockPut(signal as typeof d.imageMode, () => { order.push(name) })
  }
  setMockValue(d.arrayCounter, 57)
  await p(cam.prepare(edge(20)))
  t.equal(await d.triggerMode.getValue(), 'On')
  t.equal(await d.triggerSource.getValue(), 'Line1')
  t.equal(await d.exposureMode.getValue(), 'Timed')
  t.equal(await d.imageMode.getValue(), 'Multiple')
  t.equal(await d.numImages.getValue(), 20)
  t.equal(await d.acquireTime.getValue(), 0.01)
  t.equal(await d.arrayCounter.getValue(), 0)
  t.equal(await d.arrayCallbacks.getValue(), 'Enable')
  t.same(getMockPutCalls(d.acquirePeriod), [], 'edge trigger leaves AcquirePeriod alone')
  t.equal(order.at(-1), 'triggerMode', 'TriggerMode is written last')
  t.same(writer.opened, [{ name: 'manta1', framesPerEvent: 1, expectedFrames: 20 }])
  t.same(await cam.describeCollect(), { manta1: { source: 'test:', dtype: 'array', shape: [544, 728], external: 'STREAM:' } })
  await p(cam.prepare({ trigger: 'internal', numberOfEvents: 3, livetime: 0.1 }))
  t.equal(writer.opened.length, 1, 'a second prepare of the same scan keeps the file')
  t.equal(await d.triggerMode.getValue(), 'Off')
  t.equal(await d.triggerSource.getValue(), 'Freerun')
  t.equal(await d.acquirePeriod.getValue(), 0.1 + 63e-6)
  t.same(cam.lastTriggerInfo, { trigger: 'internal', numberOfEvents: 3, livetime: 0.1 })
})

t.test('prepare refuses what the camera cannot do, before writing anything', async t => {
  const { cam, d } = await setup()
  await t.rejects(p(cam.prepare(edge(10, { livetime: 100 }))), { code: ErrorCode.BAD_INPUT, message: /^manta1: livetime 100 s is outside the camera's exposure range/ })
  await t.rejects(p(cam.prepare({ trigger: 'edge_trigger', numberOfEvents: -1 })), { code: ErrorCode.BAD_INPUT, message: /manta1: TriggerInfo numberOfEvents must be an integer >= 0/ })
  t.same(getMockPutCalls(d.triggerMode), [])
  const bare = new ADVimba('P:', { name: 'bare' })
  await bare.connect({ mock: true })
  await t.rejects(p(bare.prepare(edge(1))), { code: ErrorCode.BAD_INPUT, message: 'bare: prepare() needs a DetectorWriter: call setWriter() first (the CLI wires TstFlyFrameWriter or IocHdfWriter)' })
  await t.rejects(p(bare.kickoff()), { code: ErrorCode.BAD_INPUT, message: 'bare: kickoff() needs a prepare(TriggerInfo) first' })
  await t.rejects(p(bare.complete()), { code: ErrorCode.BAD_INPUT, message: 'bare: complete() needs a kickoff() first' })
  await t.rejects(bare.describeCollect(), { code: ErrorCode.BAD_INPUT })
  // Model_RBV is '' in mock mode and there is no model option: the deadtime is unknown.
  bare.setWriter(new FakeWriter())
  await t.rejects(p(bare.prepare(edge(1))), { code: ErrorCode.BAD_INPUT, message: /^bare: no deadtime known for camera model ""/ })
  setMockValue(bare.drv.model, 'Manta G-235B')
  await bare.controller.identify()
  t.equal(bare.controller.getDeadtime(0.01), 390e-6, 'the model read from Model_RBV picks the deadtime')
})

t.test('complete: waits for every event on disk, reports frames, then the camera idle and the writer closed', async t => {
  const { cam, d, writer } = await setup()
  await p(cam.prepare(edge(10)))
  await p(cam.kickoff())
  t.same(getMockPutCalls(d.acquire).map((c) => [c.value, c.wait]), [[true, false]], 'Acquire=1 put without waiting for completion')
  const status = cam.complete()
  const updates: WatcherUpdate[] = []
  status.watch((u) => updates.push(u))
  for (let i = 0; i < 10; i++) {
    writer.frames(1)
    setMockValue(d.arrayCounter, i + 1)
    await tick()
  }
  t.equal(status.done, false, 'the camera is still acquiring (Acquire_RBV 1)')
  setMockValue(d.acquire, false)
  setMockValue(d.detectorState, 'Idle')
  await p(status)
  t.equal(writer.closed, 1)
  t.same(writer.aborted, [])
  t.match(updates.at(-1), { name: 'manta1', current: 10, target: 10, fraction: 1, unit: 'frames' })
  t.equal(await cam.getIndex(), 10)
  const docs: StreamAsset[] = []
  for await (const doc of cam.collectAssetDocs()) docs.push(doc)
  t.match(docs, [['stream_datum', { indices: { start: 0, stop: 10 } }]])
  t.same(cam.counters().received, 10)
  t.equal(await cam.controller.readArrayCounter(), 10)
})

t.test('stall: frames lost between camera and writer → STALLED naming produced vs arrived; disarmed, writer aborted', async t => {
  const { cam, d, writer, clock } = await setup()
  await p(cam.prepare(edge(100)))
  await p(cam.kickoff())
  const status = cam.complete()
  writer.frames(52)
  setMockValue(d.arrayCounter, 57)
  const t0 = clock.now()
  const err = await p(status).then(() => undefined, (e: unknown) => e)
  t.match(err, {
    code: ErrorCode.STALLED,
    message: 'manta1: stalled: no new frame for 1.05 s (bound 1011 ms: livetime 0.01 s + deadtime 0.000063 s + margin 1000 ms); ' +
      '52 of 100 frames received; the camera produced 57 frames but 52 arrived: frames are lost between the camera and the writer ' +
      '(plugin callbacks, Channel Access, the frame ring); DetectorState_RBV Waiting',
    details: { received: 52, expected: 100, framesProduced: 57, state: 'Waiting', stallTimeoutMs: 1011 }
  })
  t.ok(clock.now() - t0 <= 1011 + 2 * cam.timeouts.progressPollMs, 'failed within a poll of the bound')
  t.same(getMockPutCalls(d.acquire).map((c) => c.value), [true, false], 'disarmed')
  t.equal(await d.detectorState.getValue(), 'Idle')
  t.equal(writer.aborted.length, 1)
  t.match(writer.aborted[0], /stalled/)
})

t.test('stall: no more triggers → STALLED saying the camera produced only what arrived', async t => {
  const { cam, d, writer } = await setup()
  await p(cam.prepare(edge(20)))
  await p(cam.kickoff())
  const status = cam.complete()
  writer.frames(10)
  setMockValue(d.arrayCounter, 10)
  await t.rejects(p(status), {
    code: ErrorCode.STALLED,
    message: /10 of 20 frames received; the camera produced only 10 frames of 20 and is in DetectorState_RBV Waiting: it got no more triggers/
  })
})

t.test('before the first frame the bound is exposureTimeout (e.g. the motor\'s run-up)', async t => {
  const { cam, clock } = await setup()
  await p(cam.prepare(edge(5, { exposureTimeout: 3 })))
  await p(cam.kickoff())
  const t0 = clock.now()
  await t.rejects(p(cam.complete()), {
    code: ErrorCode.STALLED,
    message: /^manta1: stalled: no frame arrived within 3\.\d\d s of kickoff \(bound 3000 ms: exposureTimeout 3 s\); 0 of 5 frames received; the camera produced only 0 frames of 5/
  })
  t.ok(clock.now() - t0 >= 3000, 'not before exposureTimeout')
})

t.test('a detector error state fails complete with DETECTOR naming the state and StatusMessage_RBV', async t => {
  const { cam, d, writer } = await setup()
  await p(cam.prepare(edge(10)))
  await p(cam.kickoff())
  const status = cam.complete()
  writer.frames(3)
  await tick()
  setMockValue(cam.statusMessage, 'Camera disconnected')
  setMockValue(d.detectorState, 'Error')
  await t.rejects(p(status), {
    code: ErrorCode.DETECTOR,
    message: 'manta1: the camera went to DetectorState_RBV Error (StatusMessage_RBV: "Camera disconnected") while acquiring',
    details: { state: 'Error' }
  })
  t.equal(writer.aborted.length, 1)
  t.same(getMockPutCalls(d.acquire).map((c) => c.value), [true, false])
})

t.test('arm refuses a camera that is not idle, naming the state; an arm that never starts is bounded', async t => {
  const { cam, d } = await setup({ timeouts: { armTimeoutMs: 50, putTimeoutMs: 50 } })
  await p(cam.prepare(edge(10)))
  setMockValue(d.detectorState, 'Error')
  await t.rejects(p(cam.kickoff()), { code: ErrorCode.DETECTOR, message: /^manta1: cannot arm: the camera is not idle: DetectorState_RBV Error/ })
  t.same(getMockPutCalls(d.acquire), [], 'nothing was written')
  setMockValue(d.detectorState, 'Idle')
  setMockPutProceeds(d.acquire, false)
  await t.rejects(p(cam.kickoff()), { code: ErrorCode.TIMEOUT, message: /setting manta1-drv-acquire to true did not finish within 50 ms/ })
  setMockPutProceeds(d.acquire, true)
})

t.test('stop(): complete fails CANCELLED, the camera is disarmed, the writer aborted; stop(true) completes', async t => {
  const { cam, d, writer } = await setup()
  await p(cam.prepare(edge(10)))
  await p(cam.kickoff())
  const status = cam.complete()
  writer.frames(4)
  await tick()
  await cam.stop()
  await t.rejects(p(status), { code: ErrorCode.CANCELLED, message: 'manta1: stopped after 4 of 10 frames' })
  t.same(getMockPutCalls(d.acquire).map((c) => c.value), [true, false])
  t.same(writer.aborted, ['stopped'])

  await p(cam.prepare(edge(10)))
  await p(cam.kickoff())
  const second = cam.complete()
  await cam.stop(true)
  await p(second)
  t.equal(writer.closed, 1, 'stop(true) closes the file instead')
})

t.test('stage disarms a leftover acquisition; unstage disarms and closes once, twice is safe', async t => {
  const { cam, d, writer } = await setup()
  setMockValue(d.acquire, true)
  setMockValue(d.detectorState, 'Acquire')
  await cam.stage()
  t.same(getMockPutCalls(d.acquire).map((c) => c.value), [false])
  t.equal(await d.detectorState.getValue(), 'Idle')
  await p(cam.prepare(edge(2)))
  await p(cam.kickoff())
  await cam.unstage()
  await cam.unstage()
  t.same(getMockPutCalls(d.acquire).map((c) => c.value), [false, true, false, false])
  t.equal(writer.closed, 1)
  await t.rejects(cam.describeCollect(), { code: ErrorCode.BAD_INPUT }, 'the next scan opens a new file')
})

t.test('every controller wait is bounded: disarm and waitForIdle name what they saw', async t => {
  const { cam, d } = await setup({ timeouts: { disarmTimeoutMs: 50 } })
  await p(cam.prepare(edge(2)))
  await p(cam.kickoff())
  await t.rejects(cam.controller.waitForIdle(30), { code: ErrorCode.TIMEOUT, message: 'manta1: still acquiring after 30 ms: DetectorState_RBV Waiting, ArrayCounter_RBV 0 of NumImages 2' })
  // A camera that does not leave Waiting when told to stop.
  callbackOnMockPut(d.acquire, () => { setMockValue(d.detectorState, 'Waiting') })
  await t.rejects(cam.controller.disarm(), { code: ErrorCode.DETECTOR, message: 'manta1: disarm (Acquire = 0) did not stop the camera within 50 ms: DetectorState_RBV Waiting' })
})

t.test('a controller without onError/diagnose: errors come through waitForIdle; the stall reason has no suspect', async t => {
  const fault: { error?: Error } = {}
  const calls: string[] = []
  const controller: ObservableController = {
    getDeadtime: () => 0.001,
    prepare: async () => { calls.push('prepare') },
    arm: async () => { calls.push('arm') },
    disarm: async () => { calls.push('disarm') },
    waitForIdle: async (ms) => {
      await new Promise((resolve) => setTimeout(resolve, Math.min(ms, 5)))
      if (fault.error !== undefined) throw fault.error
      throw new FlyScanError(ErrorCode.TIMEOUT, 'not yet')
    }
  }
  const writer = new FakeWriter()
  const det = new StandardDetector(controller, { name: 'plain', writer, clock: new VirtualClock(), timeouts: { stallMarginMs: 100_000, errorWatchSliceMs: 5 } })
  t.equal(det.name, 'plain')
  await p(det.prepare({ trigger: 'internal', numberOfEvents: 3, livetime: 0.01 }))
  await p(det.kickoff())
  const status = det.complete()
  fault.error = new Error('detector on fire')
  await t.rejects(p(status), { message: 'detector on fire' })
  t.same(calls, ['prepare', 'arm', 'disarm'])
  t.equal(writer.aborted.length, 1)
})
