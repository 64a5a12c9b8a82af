import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { ADVimba } from '../../src/areadetector/index.js'
import { caSignalR } from '../../src/backends/index.js'
import type { DataKey, DetectorWriter, FrameCounters, SignalR, StreamAsset, Unsubscribe } from '../../src/devices/index.js'
import { createSimIoc, parseIocConfig, type SimCamera } from '../../src/sim/ioc/index.js'
import { ErrorCode } from '../../src/errors.js'
import { serveIoc } from '../support/served-ioc.js'

// ADVimba over real Channel Access against the simulated IOC's camera (src/sim/ioc/camera.ts): prepare writes the
// driver's PVs (read back from the SimCamera's records), arm starts an acquisition that the test triggers with
// camera.externalTrigger(), as the simulated PandA's TTLOUT does, and complete follows a test DetectorWriter that counts
// frames from an ArrayCounter_RBV monitor. One CaContext per process.

const PREFIX = 'XF:31ID1-ES{GigE-Cam:1}'
const STRICT = 'XF:31ID1-ES{GigE-Cam:9}'
const MARGIN_MS = 1000

const ioc = createSimIoc(parseIocConfig({
  cameras: [
    { prefix: PREFIX, model: 'Manta G-125', width: 64, height: 48, dataType: 'UInt8' },
    // A camera whose shortest exposure is 1 ms: it clamps a shorter AcquireTime, as real cameras do.
    { prefix: STRICT, model: 'Manta G-235', width: 32, height: 24, dataType: 'UInt8', minExposure: 1e-3 }
  ]
}, 'advimba-sim.test'))
await serveIoc(t, ioc)

function simCamera (prefix: string): SimCamera {
  const camera = ioc.cameras.get(prefix)
  if (camera === undefined) throw new Error(`the simulated IOC serves no camera ${prefix}`)
  return camera
}

/** What the simulated IOC holds in `<prefix>cam1:<suffix>` (enum records: the state's text). */
function held (prefix: string, suffix: string): string | number {
  const record = simCamera(prefix).records().find((r) => r.name === `${prefix}cam1:${suffix}`)
  if (record === undefined) throw new Error(`no record ${prefix}cam1:${suffix}`)
  return ['mbbo', 'mbbi', 'bo', 'bi'].includes(record.type) ? record.text : record.number
}

/**
 * A DetectorWriter that writes nothing: a frame "arrives" and "is on disk" when the driver's ArrayCounter_RBV monitor
 * goes up (over real Channel Access). Cumulative across prepares (which reset ArrayCounter to 0).
 */
class ArrayCounterWriter implements DetectorWriter {
  readonly #signal: SignalR<number>
  #unsubscribe: Unsubscribe | undefined
  #last = 0
  frames = 0
  opened = 0
  closed = 0
  aborted: string[] = []

  constructor (prefix: string) {
    this.#signal = caSignalR<number>(`${prefix}cam1:ArrayCounter_RBV`, { name: 'test-arrayCounter' })
  }

  async open (name: string): Promise<Record<string, DataKey>> {
    await this.#signal.connect({ timeout: 5000 })
    this.opened++
    this.#unsubscribe ??= this.#signal.subscribeValue((n) => {
      if (n > this.#last) this.frames += n - this.#last
      this.#last = n
    })
    return { [name]: { source: `ca://${PREFIX}image1:ArrayData`, dtype: 'array', shape: [48, 64], external: 'STREAM:' } }
  }

  async getIndicesWritten (): Promise<number> { return this.frames }

  counters (): FrameCounters {
    return { received: this.frames, written: this.frames, dropped: 0, uniqueIdGaps: 0, firstUniqueId: undefined, lastUniqueId: undefined, bytesWritten: 0 }
  }

  async * collectStreamDocs (): AsyncIterable<StreamAsset> {}

  async close (): Promise<void> { this.closed++; this.#stop() }
  async abort (reason: string): Promise<void> { this.aborted.push(reason); this.#stop() }

  #stop (): void {
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
  }
}

/** Fire `n` trigger edges on Line1, `periodMs` apart (longer than exposure + readout); returns how many were accepted. */
async function trigger (camera: SimCamera, n: number, periodMs = 5): Promise<number> {
  let accepted = 0
  for (let i = 0; i < n; i++) {
    if (camera.externalTrigger({ line: 'Line1' }) === 'accepted') accepted++
    await sleep(periodMs)
  }
  return accepted
}

const p = async <T>(status: PromiseLike<T>): Promise<T> => await status

const writer = new ArrayCounterWriter(PREFIX)
const manta = new ADVimba(PREFIX, { name: 'manta1', writer, timeouts: { stallMarginMs: MARGIN_MS } })
await manta.connect({ timeout: 5000 })

t.test('connect reads Model_RBV: the deadtime is the Manta G-125\'s; the simulated IOC has no StatusMessage_RBV', async t => {
  t.equal(manta.controller.model, 'Manta G-125')
  t.equal(manta.controller.getDeadtime(0.001), 63e-6)
  t.equal(manta.statusMessageConnected, false, 'optional: the device connected without it')
  t.equal(await manta.drv.detectorState.getValue(), 'Idle')
  t.match(await manta.readConfiguration(), { 'manta1-drv-model': { value: 'Manta G-125' } })
})

t.test('edge_trigger for 20 frames: the PVs on the camera, arm, 20 triggers, complete', async t => {
  const camera = simCamera(PREFIX)
  const framesBefore = camera.stats.frames
  await manta.stage()
  await p(manta.prepare({ trigger: 'edge_trigger', numberOfEvents: 20, livetime: 0.001 }))
  t.equal(held(PREFIX, 'TriggerMode_RBV'), 'On')
  t.equal(held(PREFIX, 'TriggerSource_RBV'), 'Line1')
  t.equal(held(PREFIX, 'ExposureMode_RBV'), 'Timed')
  t.equal(held(PREFIX, 'ImageMode_RBV'), 'Multiple')
  t.equal(held(PREFIX, 'NumImages_RBV'), 20)
  t.equal(held(PREFIX, 'AcquireTime_RBV'), 0.001)
  t.equal(held(PREFIX, 'ArrayCallbacks_RBV'), 'Enable')
  t.equal(held(PREFIX, 'ArrayCounter_RBV'), 0)
  t.equal(camera.acquiring, false, 'prepare acquires nothing')
  t.equal(writer.opened, 1)

  await p(manta.kickoff())
  t.equal(camera.acquiring, true, 'armed')
  t.equal(held(PREFIX, 'Acquire_RBV'), 'Acquiring')
  const status = manta.complete()
  t.equal(await trigger(camera, 20), 20, 'every trigger accepted')
  await p(status)
  t.equal(camera.stats.frames - framesBefore, 20)
  t.equal(camera.acquiring, false, 'the acquisition ended by itself (NumImages reached)')
  t.equal(held(PREFIX, 'DetectorState_RBV'), 'Idle')
  t.equal(writer.frames, 20)
  t.equal(writer.closed, 1)
  t.equal(await manta.controller.readArrayCounter(), 20)
  await manta.unstage()
})

t.test('internal for 5 frames: the camera runs at its own rate and complete ends by itself', async t => {
  await manta.stage()
  const before = writer.frames
  await p(manta.prepare({ trigger: 'internal', numberOfEvents: 5, livetime: 0.002 }))
  t.equal(held(PREFIX, 'TriggerMode_RBV'), 'Off')
  t.equal(held(PREFIX, 'TriggerSource_RBV'), 'Freerun')
  t.equal(held(PREFIX, 'AcquirePeriod_RBV'), 0.002 + 63e-6)
  await p(manta.kickoff())
  await p(manta.complete())
  t.equal(writer.frames - before, 5)
  await manta.unstage()
})

t.test('stall: 10 of 20 triggers → STALLED within the stall bound, naming the camera\'s count; disarmed, writer aborted', async t => {
  const camera = simCamera(PREFIX)
  await manta.stage()
  await p(manta.prepare({ trigger: 'edge_trigger', numberOfEvents: 20, livetime: 0.001 }))
  await p(manta.kickoff())
  const status = manta.complete()
  t.equal(await trigger(camera, 10), 10)
  const started = Date.now()
  await t.rejects(p(status), {
    code: ErrorCode.STALLED,
    message: /^manta1: stalled: no new frame for \d+\.\d\d s \(bound 1002 ms: livetime 0\.001 s \+ deadtime 0\.000063 s \+ margin 1000 ms\); 10 of 20 frames received; the camera produced only 10 frames of 20 and is in DetectorState_RBV Acquire: it got no more triggers/,
    details: { received: 10, expected: 20, framesProduced: 10 }
  })
  t.ok(Date.now() - started < 10_000, 'STALLED well before any outer timeout')
  t.equal(camera.acquiring, false, 'disarmed')
  t.equal(held(PREFIX, 'DetectorState_RBV'), 'Idle')
  t.equal(writer.aborted.length, 1)
  await manta.unstage()
  t.equal(camera.externalTrigger({ line: 'Line1' }), 'ignored', 'no acquisition is left running')
})

t.test('a setting the camera refuses (clamps) is FLY_ERR_DETECTOR naming the PV, the value wanted and got', async t => {
  const strict = new ADVimba(STRICT, { name: 'strict', writer: new ArrayCounterWriter(STRICT) })
  await strict.connect({ timeout: 5000 })
  t.equal(strict.controller.getDeadtime(undefined), 390e-6, 'Manta G-235')
  await t.rejects(p(strict.prepare({ trigger: 'edge_trigger', numberOfEvents: 3, livetime: 1e-4 })), {
    code: ErrorCode.DETECTOR,
    message: `strict: the camera did not take a setting: ${STRICT}cam1:AcquireTime_RBV: wanted 0.0001, got 0.001 (after 2000 ms)`
  })
  await t.rejects(p(strict.kickoff()), { code: ErrorCode.BAD_INPUT }, 'a failed prepare leaves nothing to kick off')
  await strict.unstage()
})

t.test('arm refuses a camera that is already acquiring (another client), naming its state', async t => {
  const camera = simCamera(PREFIX)
  await p(manta.prepare({ trigger: 'edge_trigger', numberOfEvents: 2, livetime: 0.001 }))
  const other = caSignalR<number>(`${PREFIX}cam1:Acquire`, { name: 'other' })
  await other.connect({ timeout: 5000 })
  await (other.backend.put(1, false))
  const deadline = Date.now() + 5000
  while (!camera.acquiring && Date.now() < deadline) await sleep(5)
  await t.rejects(p(manta.kickoff()), { code: ErrorCode.DETECTOR, message: 'manta1: cannot arm: the camera is not idle: DetectorState_RBV Acquire' })
  await manta.stage()
  t.equal(camera.acquiring, false, 'stage disarmed the leftover acquisition')
  await manta.unstage()
})

t.test('the camera going to DetectorState Error mid-scan fails complete with FLY_ERR_DETECTOR; disarmed, writer aborted', async t => {
  const camera = simCamera(PREFIX)
  const state = camera.records().find((r) => r.name === `${PREFIX}cam1:DetectorState_RBV`)
  if (state === undefined) throw new Error('no DetectorState_RBV record')
  await manta.stage()
  const aborted = writer.aborted.length
  await p(manta.prepare({ trigger: 'edge_trigger', numberOfEvents: 10, livetime: 0.001 }))
  await p(manta.kickoff())
  const status = manta.complete()
  t.equal(await trigger(camera, 3), 3)
  state.set('Error')
  await t.rejects(p(status), { code: ErrorCode.DETECTOR, message: 'manta1: the camera went to DetectorState_RBV Error while acquiring', details: { state: 'Error' } })
  t.equal(camera.acquiring, false, 'disarmed (Acquire = 0)')
  t.equal(writer.aborted.length, aborted + 1)
  await manta.unstage()
})

t.test('constant_gate: ExposureMode TriggerWidth, AcquireTime untouched, each gate makes a frame', async t => {
  const camera = simCamera(PREFIX)
  await manta.stage()
  const before = writer.frames
  const acquireTime = held(PREFIX, 'AcquireTime_RBV')
  await p(manta.prepare({ trigger: 'constant_gate', numberOfEvents: 3 }))
  t.equal(held(PREFIX, 'ExposureMode_RBV'), 'TriggerWidth')
  t.equal(held(PREFIX, 'TriggerMode_RBV'), 'On')
  t.equal(held(PREFIX, 'AcquireTime_RBV'), acquireTime, 'the gate is the exposure: AcquireTime is not written')
  await p(manta.kickoff())
  const status = manta.complete()
  let accepted = 0
  for (let i = 0; i < 3; i++) {
    if (camera.externalTrigger({ line: 'Line1', widthS: 0.002 }) === 'accepted') accepted++
    await sleep(10)
  }
  t.equal(accepted, 3)
  await p(status)
  t.equal(writer.frames - before, 3)
  await manta.unstage()
})
