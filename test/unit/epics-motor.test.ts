import t from 'tap'
import { setImmediate as tick } from 'node:timers/promises'
import type { WatcherUpdate } from '../../src/devices/index.js'
import { callbackOnMockPut, getMockPutCalls, setMockPutProceeds, setMockValue, type HasBackend } from '../../src/backends/index.js'
import {
  EpicsMotor, checkFlyMotorInfo, flyMotion, flyVelocity, moveTimeoutMs, runUpDistance, type EpicsMotorOptions
} from '../../src/epics/index.js'
import { defaultDeviceClasses } from '../../src/config/index.js'
import { defaults } from '../../config/index.js'
import { ErrorCode } from '../../src/errors.js'

// EpicsMotor's logic on mock backends: the IOC's part (RBV following VAL) is played by put callbacks.
const PREFIX = 'XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr'

interface Setup {
  velo?: number
  accl?: number
  vmax?: number
  hlm?: number
  llm?: number
  rbv?: number
  /** RBV jumps to each VAL written (default true). */
  instant?: boolean
}

/** A mocked motor: VELO 10, ACCL 0.5, VMAX 40, limits ±100, deg, PREC 3; a VAL write moves RBV there at once. */
async function mockMotor (setup: Setup = {}, options: EpicsMotorOptions = {}): Promise<EpicsMotor> {
  const m = new EpicsMotor(PREFIX, { name: 'rot', ...options })
  await m.connect({ mock: true })
  setMockValue(m.velocity, setup.velo ?? 10)
  setMockValue(m.accelerationTime, setup.accl ?? 0.5)
  setMockValue(m.maxVelocity, setup.vmax ?? 40)
  setMockValue(m.highLimitTravel, setup.hlm ?? 100)
  setMockValue(m.lowLimitTravel, setup.llm ?? -100)
  setMockValue(m.units, 'deg')
  setMockValue(m.precision, 3)
  setMockValue(m.userReadback, setup.rbv ?? 0)
  setMockValue(m.userSetpoint, setup.rbv ?? 0)
  if (setup.instant ?? true) callbackOnMockPut(m.userSetpoint, (v) => { if (v !== undefined) setMockValue(m.userReadback, v) })
  return m
}

/** A status as a Promise (for t.rejects / t.resolves). */
const p = async <T>(status: PromiseLike<T>): Promise<T> => await status

const putValues = (signal: HasBackend<number>): Array<number | undefined> =>
  getMockPutCalls(signal).map((c) => c.value)

t.test('the math: fly velocity, run-up, ramp positions in both directions, move timeouts', async t => {
  const up = { startPosition: 0, endPosition: 20, timeForMove: 1 }
  t.equal(flyVelocity(up), 20)
  t.equal(runUpDistance(20, 0.5), 5, 'v * ACCL / 2')
  t.equal(runUpDistance(-20, 0.5), 5, 'unsigned')
  t.same(flyMotion(up, 0.5), { velocity: 20, direction: 1, runUp: 5, rampUpStart: -5, rampDownEnd: 25 })
  const down = { startPosition: 10, endPosition: -10, timeForMove: 2 }
  t.equal(flyVelocity(down), -10)
  t.same(flyMotion(down, 0.5), { velocity: 10, direction: -1, runUp: 2.5, rampUpStart: 12.5, rampDownEnd: -12.5 })
  t.same(flyMotion(up, 0), { velocity: 20, direction: 1, runUp: 0, rampUpStart: 0, rampDownEnd: 20 }, 'no ACCL: no run-up')
  t.equal(moveTimeoutMs(20, 10, 0.5, 10_000), 13_000, '|d|/v + 2 ACCL + margin')
  t.equal(moveTimeoutMs(-20, 10, 0.5, 0), 3000, 'direction does not matter')
  t.equal(moveTimeoutMs(20, 100, 0.05, 50), 350, 'whole ms, without float noise')
  t.equal(moveTimeoutMs(1, 3, 0, 0), 334, 'rounded up')
  t.equal(defaults.motor.moveTimeoutMarginMs, 10_000)
  t.throws(() => { checkFlyMotorInfo({ startPosition: 0, endPosition: 1, timeForMove: 0 }, 'rot') },
    { code: ErrorCode.BAD_INPUT, message: /^rot: FlyMotorInfo timeForMove must be > 0 s \(got 0\)/ })
  t.throws(() => { checkFlyMotorInfo({ startPosition: 3, endPosition: 3, timeForMove: 1 }, 'rot') }, { message: /both 3: there is nothing to fly over/ })
  t.throws(() => { checkFlyMotorInfo({ startPosition: Number.NaN, endPosition: 3, timeForMove: 1 }, 'rot') }, { message: /startPosition must be a finite number/ })
  t.throws(() => { checkFlyMotorInfo({ startPosition: 0, endPosition: 3, timeForMove: 1, timeout: -1 }, 'rot') }, { message: /timeout must be > 0 ms/ })
  t.doesNotThrow(() => { checkFlyMotorInfo(down, 'rot') })
})

t.test('signals are the record\'s fields; the readback carries the motor\'s name', async t => {
  const m = await mockMotor()
  const fields: Array<[{ source: string }, string]> = [
    [m.userSetpoint, 'VAL'], [m.userReadback, 'RBV'], [m.velocity, 'VELO'], [m.accelerationTime, 'ACCL'], [m.maxVelocity, 'VMAX'],
    [m.doneMove, 'DMOV'], [m.motorStop, 'STOP'], [m.highLimitTravel, 'HLM'], [m.lowLimitTravel, 'LLM'], [m.units, 'EGU'],
    [m.precision, 'PREC'], [m.deadband, 'RDBD']
  ]
  for (const [signal, field] of fields) t.equal(signal.source, `mock+ca://${PREFIX}.${field}`)
  t.equal(m.userReadback.name, 'rot')
  t.equal(m.velocity.name, 'rot-velocity')
  t.same(m.hints, { fields: ['rot'] })
  t.throws(() => new EpicsMotor(''), { code: ErrorCode.BAD_INPUT, message: /prefix \(record name\) must be a non-empty string/ })
})

t.test('read, describe (units and precision from EGU and PREC), configuration, locate', async t => {
  const m = await mockMotor({ rbv: 12.5 })
  const reading = await m.read()
  t.same(Object.keys(reading), ['rot'])
  t.equal(reading.rot?.value, 12.5)
  const keys = await m.describe()
  t.match(keys, { rot: { dtype: 'number', shape: [], source: `mock+ca://${PREFIX}.RBV`, units: 'deg', precision: 3 } })
  setMockValue(m.units, 'mm')
  t.equal((await m.describe()).rot?.units, 'mm', 'EGU as it is now')
  t.same(Object.keys(await m.readConfiguration()), ['rot-velocity', 'rot-accelerationTime', 'rot-units'])
  t.same(Object.keys(await m.describeConfiguration()), ['rot-velocity', 'rot-accelerationTime', 'rot-units'])
  t.equal((await m.readConfiguration())['rot-velocity']?.value, 10)
  await m.set(30)
  t.same(await m.locate(), { setpoint: 30, readback: 30 })
  const seen: number[] = []
  const stop = m.subscribeValue((v) => seen.push(v))
  await m.set(31)
  stop()
  t.same(seen, [30, 31])
})

t.test('set writes VAL with completion and reports progress from RBV', async t => {
  const m = await mockMotor({ instant: false })
  // Play a move in four RBV steps before the put completes.
  callbackOnMockPut(m.userSetpoint, async (v) => {
    for (const x of [5, 10, 15]) {
      await tick()
      setMockValue(m.userReadback, x)
    }
    await tick()
    if (v !== undefined) setMockValue(m.userReadback, v)
  })
  const status = m.set(20)
  const updates: WatcherUpdate[] = []
  status.watch((u) => updates.push(u))
  await status
  t.equal(status.success, true)
  t.same(getMockPutCalls(m.userSetpoint), [{ value: 20, wait: true }])
  t.same(updates.map((u) => u.current), [0, 5, 10, 15, 20, 20], 'from the initial readback to the target')
  t.same(updates.map((u) => u.fraction), [0, 0.25, 0.5, 0.75, 1, 1])
  for (const u of updates) t.match(u, { initial: 0, target: 20, name: 'rot', unit: 'deg', precision: 3 })
})

t.test('targets outside HLM/LLM are refused before anything is written; both 0 means no limits', async t => {
  const m = await mockMotor()
  await t.rejects(p(m.set(150)), {
    code: ErrorCode.BAD_INPUT,
    message: `rot: target 150 deg is above the high limit HLM=100 deg (${PREFIX}.HLM); nothing was moved`
  })
  await t.rejects(p(m.set(-100.5)), { code: ErrorCode.BAD_INPUT, message: /target -100\.5 deg is below the low limit LLM=-100 deg \(.*\.LLM\)/ })
  await t.rejects(p(m.set(Number.NaN)), { message: /target NaN deg is not a finite number/ })
  t.same(getMockPutCalls(m.userSetpoint), [], 'VAL never written')
  await t.resolves(p(m.set(100)), 'the limit itself is allowed')
  setMockValue(m.highLimitTravel, 0)
  setMockValue(m.lowLimitTravel, 0)
  await t.resolves(p(m.set(1e6)))
  t.equal(await m.userReadback.getValue(), 1e6)
  setMockValue(m.velocity, 0)
  await t.rejects(p(m.set(1)), { code: ErrorCode.BAD_INPUT, message: /rot: cannot move with VELO=0/ })
})

t.test('the timeout: derived from distance, VELO, ACCL and the margin, or the one given', async t => {
  const m = await mockMotor({ velo: 100, accl: 0.05, instant: false }, { moveTimeoutMarginMs: 50 })
  setMockPutProceeds(m.userSetpoint, false)
  // 10 / 100 s + 2 x 0.05 s + 50 ms = 250 ms.
  const t0 = performance.now()
  await t.rejects(p(m.set(10)), {
    code: ErrorCode.TIMEOUT,
    message: 'rot: the move from 0 deg to 10 deg did not finish within 250 ms (|10| / VELO 100 + 2 x ACCL 0.05 s + 50 ms); the motor was not stopped'
  })
  const elapsed = performance.now() - t0
  t.ok(elapsed >= 245 && elapsed < 2000, `timed out after ${elapsed.toFixed(0)} ms`)
  // Twice as far: twice the travel time.
  const t1 = performance.now()
  await t.rejects(p(m.set(-20)), { message: /within 350 ms \(\|-20\| \/ VELO 100/ })
  t.ok(performance.now() - t1 >= 345)
  await t.rejects(p(m.set(10, { timeout: 30 })), { code: ErrorCode.TIMEOUT, message: /within 30 ms \(the timeout given\)/ })
  setMockPutProceeds(m.userSetpoint, true)
})

t.test('stop writes STOP=1 without waiting; the move under way fails, unless stop(true)', async t => {
  const m = await mockMotor()
  setMockPutProceeds(m.userSetpoint, false)
  const move = m.set(10)
  await tick()
  t.equal(move.done, false)
  setMockValue(m.userReadback, 3.25)
  await m.stop()
  t.same(getMockPutCalls(m.motorStop), [{ value: 1, wait: false }])
  // The IOC completes the VAL write once the motor is at rest.
  setMockPutProceeds(m.userSetpoint, true)
  await t.rejects(p(move), { code: ErrorCode.CANCELLED, message: 'rot was stopped at 3.25 deg before reaching 10 deg' })
  t.equal(move.success, false)

  setMockPutProceeds(m.userSetpoint, false)
  const move2 = m.set(20)
  await tick()
  await m.stop(true)
  setMockPutProceeds(m.userSetpoint, true)
  await t.resolves(p(move2), 'stop(true) lets the move end as a success')

  // A stop before the move's checks are done: VAL is never written.
  const before = getMockPutCalls(m.userSetpoint).length
  const move3 = m.set(30)
  await m.stop()
  await t.rejects(p(move3), { code: ErrorCode.CANCELLED, message: /before reaching 30 deg/ })
  t.equal(getMockPutCalls(m.userSetpoint).length, before)
})

t.test('prepare parks the motor a run-up before the start at VMAX, then sets the fly velocity', async t => {
  const m = await mockMotor({ rbv: 50 })
  await m.prepare({ startPosition: 0, endPosition: 20, timeForMove: 1 })
  t.same(putValues(m.velocity), [40, 20], 'VMAX for the approach, then |20 - 0| / 1 s')
  t.same(putValues(m.userSetpoint), [-5], 'start less 20 deg/s x 0.5 s / 2')
  t.equal(m.savedVelocity, 10)
  setMockPutProceeds(m.userSetpoint, false)
  await m.kickoff()
  t.same(putValues(m.userSetpoint), [-5, 25], 'kickoff is done once VAL is written: end plus the run-down')
  const done = m.complete()
  await tick()
  t.equal(done.done, false, 'complete waits for the move')
  t.equal(m.complete(), done, 'the same status each time')
  setMockPutProceeds(m.userSetpoint, true)
  await done
  t.equal(await m.userReadback.getValue(), 25)
  await m.unstage()
  t.same(putValues(m.velocity), [40, 20, 10], 'unstage restores VELO as prepare found it')
  t.equal(m.savedVelocity, undefined)
  await m.unstage()
  t.same(putValues(m.velocity), [40, 20, 10], 'nothing more to restore')
})

t.test('a fly towards lower positions, and a motor without VMAX', async t => {
  const m = await mockMotor({ vmax: 0 }, { velocity: 90 })
  await m.prepare({ startPosition: 10, endPosition: -10, timeForMove: 2 })
  t.same(putValues(m.velocity), [10], 'VMAX 0: the approach runs at VELO; then the fly velocity 10')
  t.same(putValues(m.userSetpoint), [12.5], 'the run-up is on the high side')
  await m.kickoff()
  await m.complete()
  t.same(putValues(m.userSetpoint), [12.5, -12.5])
  await m.prepare({ startPosition: -10, endPosition: 10, timeForMove: 4 })
  t.same(putValues(m.velocity), [10, 5], 'a second prepare keeps the first saved velocity')
  await m.restoreVelocity()
  t.same(putValues(m.velocity), [10, 5, 90], 'the velocity option wins (TST restores 90 deg/s)')
})

t.test('prepare refuses, before anything moves, a velocity above VMAX and a run-up or run-down outside the limits', async t => {
  const m = await mockMotor()
  await t.rejects(p(m.prepare({ startPosition: 0, endPosition: 50, timeForMove: 1 })), {
    code: ErrorCode.BAD_INPUT,
    message: `rot: the fly velocity 50 deg/s (50 deg in 1 s) is above the maximum VMAX=40 deg/s (${PREFIX}.VMAX); nothing was moved`
  })
  await t.rejects(p(m.prepare({ startPosition: 90, endPosition: 98, timeForMove: 0.5 })), {
    code: ErrorCode.BAD_INPUT,
    message: /rot: the run-down end 102 deg \(4 deg past endPosition 98\) is above the high limit HLM=100 deg/
  })
  await t.rejects(p(m.prepare({ startPosition: -98, endPosition: -90, timeForMove: 0.5 })), {
    message: /rot: the run-up start -102 deg \(4 deg before startPosition -98\) is below the low limit LLM=-100 deg/
  })
  await t.rejects(p(m.prepare({ startPosition: 1, endPosition: 1, timeForMove: 1 })), { message: /nothing to fly over/ })
  t.same(getMockPutCalls(m.velocity), [])
  t.same(getMockPutCalls(m.userSetpoint), [])
  t.equal(m.savedVelocity, undefined)
})

t.test('kickoff needs a prepare, complete a kickoff; a stopped fly fails', async t => {
  const m = await mockMotor()
  await t.rejects(p(m.kickoff()), { code: ErrorCode.BAD_INPUT, message: 'rot: kickoff() needs a prepare(FlyMotorInfo) first' })
  await t.rejects(p(m.complete()), { code: ErrorCode.BAD_INPUT, message: 'rot: complete() needs a kickoff() first' })
  await m.prepare({ startPosition: 0, endPosition: 10, timeForMove: 1 })
  setMockPutProceeds(m.userSetpoint, false)
  await m.kickoff()
  await t.rejects(p(m.kickoff()), { message: /needs a prepare/ }, 'one kickoff per prepare')
  await m.stop()
  setMockPutProceeds(m.userSetpoint, true)
  await t.rejects(p(m.complete()), { code: ErrorCode.CANCELLED, message: /rot was stopped at .* before reaching 12\.5 deg/ })
  await m.stage()
  await t.rejects(p(m.complete()), { message: /needs a kickoff/ }, 'stage forgets the fly')
})

t.test('the EpicsMotor config class builds the device; bad options are refused', async t => {
  const cls = defaultDeviceClasses().get('EpicsMotor')
  if (cls?.create === undefined) throw new Error('EpicsMotor has no factory')
  const entry = { deviceClass: 'EpicsMotor', name: 'rot_motor', prefix: PREFIX, labels: [], options: { velocity: 90 } }
  const noOthers = (name: string): never => { throw new Error(`EpicsMotor names no other device (asked for ${name})`) }
  const m = cls.create(entry, noOthers)
  t.ok(m instanceof EpicsMotor)
  t.equal(m.name, 'rot_motor')
  t.equal((m as EpicsMotor).velocity.source, `ca://${PREFIX}.VELO`)
  t.throws(() => cls.create?.({ ...entry, options: { velocity: -1 } }, noOthers), { code: ErrorCode.BAD_INPUT, message: /EpicsMotor rot_motor: velocity -1 must be > 0/ })
  t.throws(() => cls.create?.({ ...entry, options: { moveTimeoutMarginMs: -5 } }, noOthers), { message: /moveTimeoutMarginMs -5 must be >= 0/ })
})
