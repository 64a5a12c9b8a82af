// The fly-scan coordinator (src/fly/coordinator.ts) over fake parts in virtual time: what each part is asked at
// prepare for a tomography, an XAS and a still request; the kickoff order; a stall fails the scan naming the camera
// and stops every part; a failing part stops the others; a timing verdict that is not ok fails the scan; the timing
// report reaches run_stop; bad requests are refused before any part is touched.
import t from 'tap'
import { AsyncStatus, VirtualClock, type DataKey, type FrameCounters, type TriggerInfo } from '../../src/devices/index.js'
import { ErrorCode, FlyScanError, isFlyScanError } from '../../src/errors.js'
import { FlyScan } from '../../src/fly/index.js'
import type { FlyMotorInfo } from '../../src/epics/index.js'
import { defaultTriggerContext, type PandaFlyInfo } from '../../src/panda/index.js'

/** A part whose complete() the test finishes (or fails) by hand, recording every call in a shared log. */
class Part {
  readonly prepared: unknown[] = []
  stops = 0
  #finish: (() => void) | undefined
  #failWith: ((err: Error) => void) | undefined
  constructor (readonly name: string, readonly log: string[]) {}
  async stage (): Promise<void> { this.log.push(`${this.name}.stage`) }
  async unstage (): Promise<void> { this.log.push(`${this.name}.unstage`) }
  prepare (value: unknown): AsyncStatus { this.log.push(`${this.name}.prepare`); this.prepared.push(value); return AsyncStatus.resolved<void>(undefined) }
  kickoff (): AsyncStatus { this.log.push(`${this.name}.kickoff`); return AsyncStatus.resolved<void>(undefined) }
  complete (): AsyncStatus {
    this.log.push(`${this.name}.complete`)
    return new AsyncStatus(new Promise<void>((resolve, reject) => { this.#finish = resolve; this.#failWith = reject }))
  }

  finish (): void { this.#finish?.() }
  fail (err: Error): void { this.#failWith?.(err) }
  async stop (): Promise<void> { this.log.push(`${this.name}.stop`); this.stops++; this.#failWith?.(new Error(`${this.name} stopped`)) }
  async describeCollect (): Promise<Record<string, DataKey>> { return {} }
}

class FakeCamera extends Part {
  counters_: FrameCounters = { received: 0, written: 0, dropped: 0, uniqueIdGaps: 0, firstUniqueId: undefined, lastUniqueId: undefined, bytesWritten: 0 }
  counters (): FrameCounters { return this.counters_ }
  getDeadtime (): number { return 63e-6 }
  async readArrayCounter (): Promise<number> { return this.counters_.received }
  frames (n: number): void {
    this.counters_ = { ...this.counters_, received: n, written: n, firstUniqueId: 1, lastUniqueId: n, bytesWritten: n * 1000 }
  }
}

class FakePanda extends Part {
  readonly triggerContext = defaultTriggerContext()
  rowsWritten = 0
  lastResult = undefined
}

class FakeMotor extends Part {
  readonly accelerationTime = { getValue: async () => 0.2 }
  readonly maxVelocity = { getValue: async () => 720 }
}

function rig () {
  const log: string[] = []
  const clock = new VirtualClock()
  const panda = new FakePanda('panda1', log)
  const motor = new FakeMotor('rot_motor', log)
  const cameras = [new FakeCamera('manta1', log), new FakeCamera('manta2', log)]
  const fly = new FlyScan({ name: 'flyscan', panda, motor, cameras, clock, pollPeriodMs: 100 })
  return { log, clock, panda, motor, cameras, fly }
}

t.test('tomography: what each part is asked, the kickoff order, and a clean finish with the timing report', async t => {
  const { log, panda, motor, cameras, fly } = rig()
  await fly.prepare({ kind: 'tomography', numImages: 21, scanTime: 2, startDeg: 10 })
  const info = panda.prepared[0] as PandaFlyInfo & { logic: 'tomography' }
  t.equal(info.logic, 'tomography')
  t.equal(info.numImages, 21)
  t.equal(info.startDeg, 10)
  t.equal(info.exposureTime, 2 / 20 / 3, 'exposure defaults to a third of the step time (TST)')
  t.equal(info.deadtime, 63e-6, "the cameras' deadtime")
  t.equal(info.maxVelocity, 720, "the motor's VMAX")
  t.same(motor.prepared[0] as FlyMotorInfo, { startPosition: 10, endPosition: 190, timeForMove: 2 }, 'the stage is at speed from startDeg to startDeg + 180')
  const trig = cameras[0]?.prepared[0] as TriggerInfo
  t.match(trig, { numberOfEvents: 21, trigger: 'edge_trigger', livetime: 2 / 20 / 3, deadtime: 63e-6 })
  t.same(fly.collectables().map((c) => c.name), ['panda1', 'manta1', 'manta2'])

  log.length = 0
  await fly.kickoff()
  t.same(log, ['manta1.kickoff', 'manta2.kickoff', 'panda1.kickoff', 'rot_motor.kickoff'], 'cameras armed, then the PandA, then the motor moves')
  const status = fly.complete()
  for (const c of cameras) c.frames(21)
  panda.rowsWritten = 21
  for (const p of [...cameras, panda, motor]) p.finish()
  await status
  const stop = fly.runStopInfo() as { timing: { verdict: string, cameras: Array<{ received: number }>, panda: { rows: number } } }
  t.equal(stop.timing.verdict, 'ok')
  t.same(stop.timing.cameras.map((c) => c.received), [21, 21])
  t.equal(stop.timing.panda.rows, 21)
  t.same(fly.progress().frames, 42)
})

t.test('XAS: the stage parks the run-up before the window; one frame per row', async t => {
  const { panda, motor, cameras, fly } = rig()
  await fly.prepare({ kind: 'xas', npoints: 100, totalTime: 2, startE: 20, endE: 10 })
  const info = panda.prepared[0] as PandaFlyInfo & { logic: 'xas' }
  t.match(info, { logic: 'xas', npoints: 100, totalTime: 2, startDeg: 20, endDeg: 10, runUpDeg: 5, exposureTime: 0.01 })
  // 5 deg/s, ACCL 0.2 s: the acceleration covers 0.5°; the stage parks 5° before the window (at 25°) and is at speed 4.5° later.
  const m = motor.prepared[0] as FlyMotorInfo
  t.ok(Math.abs(m.startPosition - 24.5) < 1e-9, `startPosition ${m.startPosition} = 24.5`)
  t.equal(m.endPosition, 10)
  t.ok(Math.abs(m.timeForMove - 14.5 / 5) < 1e-9, 'at 5 deg/s from the start position to the end')
  t.match(cameras[1]?.prepared[0] as TriggerInfo, { numberOfEvents: 100, trigger: 'edge_trigger', livetime: 0.01 })
})

t.test('still (dark/flat): the cameras alone, internally triggered', async t => {
  const { panda, motor, cameras, fly } = rig()
  await fly.prepare({ kind: 'still', frames: 7, exposureTime: 0.02, label: 'dark' })
  t.equal(panda.prepared.length, 0)
  t.equal(motor.prepared.length, 0)
  t.same(cameras[0]?.prepared[0], { numberOfEvents: 7, trigger: 'internal', livetime: 0.02 })
  t.same(fly.collectables().map((c) => c.name), ['manta1', 'manta2'], 'no PandA data in a still scan')
})

t.test('a camera that stops delivering frames fails the scan with STALLED, naming it, and every part is stopped', async t => {
  const { panda, motor, cameras, fly } = rig()
  await fly.prepare({ kind: 'tomography', numImages: 21, scanTime: 2, startDeg: 0 })
  await fly.kickoff()
  const status = fly.complete()
  cameras[0]?.frames(21)
  cameras[1]?.frames(5)
  panda.rowsWritten = 21
  const err = await status.then(() => undefined, (e: unknown) => e)
  t.ok(isFlyScanError(err, ErrorCode.STALLED), `STALLED (${String(err)})`)
  t.match((err as Error).message, /manta2/)
  t.match((err as Error).message, /5 of 21/)
  t.same([panda.stops, motor.stops, cameras[0]?.stops, cameras[1]?.stops], [1, 1, 1, 1], 'every part stopped')
  t.equal((fly.runStopInfo() as { timing: { verdict: string } }).timing.verdict, 'stalled')
})

t.test('a part that fails stops the others; the error names the part and keeps its code', async t => {
  const { panda, motor, cameras, fly } = rig()
  await fly.prepare({ kind: 'tomography', numImages: 5, scanTime: 1, startDeg: 0 })
  await fly.kickoff()
  const status = fly.complete()
  panda.fail(new FlyScanError(ErrorCode.PANDA_ACQUISITION_FAILED, 'the capture ended with \'Data overrun\''))
  const err = await status.then(() => undefined, (e: unknown) => e)
  t.ok(isFlyScanError(err, ErrorCode.PANDA_ACQUISITION_FAILED))
  t.match((err as Error).message, /flyscan: panda1 failed: the capture ended with 'Data overrun'/)
  t.same([motor.stops, cameras[0]?.stops, cameras[1]?.stops], [1, 1, 1])
})

t.test('every part finished but a camera lost frames: FRAMES_DROPPED, with the report in run_stop', async t => {
  const { panda, motor, cameras, fly } = rig()
  await fly.prepare({ kind: 'tomography', numImages: 11, scanTime: 1, startDeg: 0 })
  await fly.kickoff()
  const status = fly.complete()
  cameras[0]?.frames(11)
  const c1 = cameras[1] as FakeCamera
  c1.frames(11)
  c1.counters_ = { ...c1.counters_, uniqueIdGaps: 2, lastUniqueId: 13 }
  panda.rowsWritten = 11
  for (const p of [...cameras, panda, motor]) p.finish()
  const err = await status.then(() => undefined, (e: unknown) => e)
  t.ok(isFlyScanError(err, ErrorCode.FRAMES_DROPPED), String(err))
  t.equal((fly.runStopInfo() as { timing: { verdict: string } }).timing.verdict, 'frames-dropped')
})

t.test('bad requests are refused before any part is touched', async t => {
  const { log, fly } = rig()
  const cases: Array<[unknown, RegExp]> = [
    [{ kind: 'tomography', numImages: 1, scanTime: 2, startDeg: 0 }, /numImages must be an integer >= 2/],
    [{ kind: 'tomography', numImages: 10, scanTime: -1, startDeg: 0 }, /scanTime must be a number > 0/],
    [{ kind: 'xas', npoints: 10, totalTime: 1, startE: 5, endE: 5 }, /no range to scan/],
    [{ kind: 'still', frames: 0, exposureTime: 0.1, label: 'dark' }, /dark: frames/],
    [{ kind: 'spiral' }, /unknown fly-scan request kind "spiral"/]
  ]
  for (const [request, re] of cases) {
    const err = await fly.prepare(request as never).then(() => undefined, (e: unknown) => e)
    t.ok(isFlyScanError(err, ErrorCode.BAD_INPUT), `${JSON.stringify(request)} → BAD_INPUT`)
    t.match((err as Error).message, re)
  }
  // An impossible scan (exposure longer than the step) is refused by the PandA's validation, before any part is prepared.
  const err = await fly.prepare({ kind: 'tomography', numImages: 721, scanTime: 1, startDeg: 0, exposureTime: 0.5 }).then(() => undefined, (e: unknown) => e)
  t.ok(isFlyScanError(err, ErrorCode.BAD_INPUT), String(err))
  t.same(log.filter((l) => l.endsWith('.prepare')), [], 'no part was prepared')
})
