import t from 'tap'
import { join } from 'node:path'
import { writeFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Reading, WatcherUpdate } from '../../src/devices/index.js'
import { CaContext } from '../../src/backends/index.js'
import { EpicsMotor } from '../../src/epics/index.js'
import { createDevices, loadConfigFile } from '../../src/config/index.js'
import { ManualClock, createSimIoc, parseIocConfig } from '../../src/sim/ioc/index.js'
import { ErrorCode } from '../../src/errors.js'
import { serveIoc } from '../support/served-ioc.js'

// EpicsMotor over real Channel Access against the simulated IOC's motor record (docs/sim-ioc.md, "Motor record").
// The IOC runs on a ManualClock: the test moves time in 10 ms steps, so every RBV the client receives carries the
// time it was computed for, and positions can be checked exactly against the trapezoid.
// One CaContext per process: every test here uses the same CA config.

const PREFIX = 'XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr'
const VELO = 10
const VMAX = 40
const ACCL = 0.5
const STEP_MS = 10

const clock = new ManualClock()
const ioc = createSimIoc(parseIocConfig({
  motors: [{ prefix: PREFIX, egu: 'deg', prec: 3, velo: VELO, vmax: VMAX, accl: ACCL, hlm: 100, llm: -100, updateMs: STEP_MS }]
}, 'epics-motor.test'), { clock })
const record = ioc.motors.get(PREFIX)
if (record === undefined) throw new Error(`the simulated IOC serves no motor ${PREFIX}`)
const { CA } = await serveIoc(t, ioc)

const motor = new EpicsMotor(PREFIX, { name: 'rot', ca: CA })
await motor.connect({ timeout: 5000 })

/** What the IOC holds in a field of the motor record ('' for VAL). */
function held (field = ''): number | string {
  const pv = ioc.find(field === '' ? PREFIX : `${PREFIX}.${field}`)
  const v = pv?.get().value[0]
  if (v === undefined) throw new Error(`no value for ${PREFIX}${field === '' ? '' : '.' + field}`)
  return v
}

/** Advance the IOC's clock in STEP_MS steps until `status` is done (at most 20 s of real time). */
async function drive (status: { readonly done: boolean }): Promise<void> {
  const deadline = Date.now() + 20_000
  while (!status.done) {
    if (Date.now() > deadline) throw new Error('the status did not finish within 20 s of real time')
    clock.advance(STEP_MS)
    await sleep(1)
  }
}

/** Wait (real time, bounded) until `ready()` holds; the clock does not move meanwhile. */
async function until (ready: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within 5 s`)
    await sleep(1)
  }
}

const near = (a: number, b: number, eps = 1e-6): boolean => Math.abs(a - b) <= eps
const p = async <T>(status: PromiseLike<T>): Promise<T> => await status

t.test('connected: the readback is the motor\'s reading, with EGU and PREC in its data key', async t => {
  const reading = await motor.read()
  t.same(Object.keys(reading), ['rot'])
  t.match(reading.rot, { value: 0, alarmSeverity: 0, timestamp: clock.nowMs() / 1000 })
  t.match(await motor.describe(), { rot: { dtype: 'number', shape: [], source: `ca://${PREFIX}.RBV`, units: 'deg', precision: 3 } })
  const config = await motor.readConfiguration()
  t.same(Object.keys(config), ['rot-velocity', 'rot-accelerationTime', 'rot-units'])
  t.equal(config['rot-velocity']?.value, VELO)
  t.equal(config['rot-accelerationTime']?.value, ACCL)
  t.equal(config['rot-units']?.value, 'deg')
  t.equal(await motor.maxVelocity.getValue(), VMAX)
  t.equal(await motor.deadband.getValue(), 0.001)
  t.equal(await motor.doneMove.getValue(), true)
})

t.test('a move: VAL written with completion, progress from RBV, done at the target', async t => {
  const status = motor.set(20)
  const updates: WatcherUpdate[] = []
  status.watch((u) => updates.push(u))
  await drive(status)
  await status
  t.equal(held('RBV'), 20)
  t.equal(await motor.userReadback.getValue(), 20)
  t.equal(await motor.doneMove.getValue(), true)
  t.same(await motor.locate(), { setpoint: 20, readback: 20 })
  // 20 deg at 10 deg/s with 0.5 s ramps: 2.5 s, an RBV every 10 ms.
  t.ok(updates.length > 100, `${updates.length} progress updates`)
  t.equal(updates[0]?.current, 0, 'the first is the initial position')
  t.equal(updates.at(-1)?.current, 20, 'the last is the target')
  t.equal(updates.at(-1)?.fraction, 1)
  t.ok(updates.every((u, i) => i === 0 || u.current >= (updates[i - 1]?.current ?? 0)), 'the readback only increases')
  for (const u of [updates[0], updates[50], updates.at(-1)]) t.match(u, { initial: 0, target: 20, name: 'rot', unit: 'deg', precision: 3 })
})

t.test('targets outside the soft limits are refused before the IOC sees them', async t => {
  await t.rejects(p(motor.set(150)), {
    code: ErrorCode.BAD_INPUT,
    message: `rot: target 150 deg is above the high limit HLM=100 deg (${PREFIX}.HLM); nothing was moved`
  })
  await t.rejects(p(motor.set(-100.001)), { code: ErrorCode.BAD_INPUT, message: /below the low limit LLM=-100 deg/ })
  t.equal(held(), 20, 'VAL unchanged')
  t.equal(held('LVIO'), 0, 'the IOC never got an out-of-limits target')
  t.equal(record.moving, false)
})

t.test('stop mid-move: STOP=1, the motor decelerates, the move fails naming where it stopped', async t => {
  const status = motor.set(-50)
  await until(() => record.moving, 'the move start')
  // 1 s into the move: 2.5 deg of ramp and 5 deg at speed behind it (20 → 12.5), 2.5 deg more to stop.
  for (let i = 0; i < 1000 / STEP_MS; i++) {
    clock.advance(STEP_MS)
    await sleep(1)
  }
  t.equal(status.done, false)
  await motor.stop()
  await until(() => held() !== -50, 'the IOC processing STOP')
  t.ok(near(held() as number, 10), `VAL is where the motor will stop (${held()})`)
  await drive(status)
  await t.rejects(p(status), { code: ErrorCode.CANCELLED, message: /^rot was stopped at 10(\.0+\d*)? deg before reaching -50 deg$/ })
  t.ok(near(held('RBV') as number, 10))
  t.equal(held('DMOV'), 1)
  t.equal(held('STOP'), 0, 'STOP resets itself')
})

/** x(t) of a fly from rest at `from`, up to `velocity` in ACCL, cruising from `start` to `end`, to rest at `to`. */
function trapezoid (tS: number, fly: { from: number, start: number, end: number, to: number, velocity: number, timeForMove: number }): number {
  const dir = Math.sign(fly.end - fly.start)
  const a = fly.velocity / ACCL
  if (tS <= 0) return fly.from
  if (tS < ACCL) return fly.from + dir * a * tS * tS / 2
  if (tS < ACCL + fly.timeForMove) return fly.start + dir * fly.velocity * (tS - ACCL)
  const tau = tS - ACCL - fly.timeForMove
  if (tau < ACCL) return fly.end + dir * (fly.velocity * tau - a * tau * tau / 2)
  return fly.to
}

for (const fly of [
  { start: 0, end: 20, timeForMove: 1, velocity: 20, from: -5, to: 25 },
  { start: 10, end: -10, timeForMove: 2, velocity: 10, from: 12.5, to: -12.5 }
]) {
  t.test(`fly ${fly.start} → ${fly.end} in ${fly.timeForMove} s: prepare, kickoff, complete follow the trapezoid`, async t => {
    await motor.stage()
    const prepared = motor.prepare({ startPosition: fly.start, endPosition: fly.end, timeForMove: fly.timeForMove })
    await drive(prepared)
    await prepared
    t.equal(held('RBV'), fly.from, `parked the run-up (velocity x ACCL / 2) before the start, at ${fly.from}`)
    t.equal(held('VELO'), fly.velocity, 'VELO is the fly velocity')
    t.equal(motor.savedVelocity, VELO)

    const readings: Array<Reading<number>> = []
    const unsubscribe = motor.userReadback.subscribe((r) => { const x = r.rot; if (x !== undefined) readings.push(x) })
    await motor.kickoff()
    await until(() => record.moving, 'the fly start')
    const t0 = clock.nowMs()
    const done = motor.complete()
    await drive(done)
    await done
    unsubscribe()
    const totalMs = (2 * ACCL + fly.timeForMove) * 1000
    t.ok(clock.nowMs() - t0 >= totalMs, `complete only after the whole trapezoid (${totalMs} ms)`)
    t.equal(held('RBV'), fly.to, 'at rest the run-down past the end')
    // Seconds since the fly started, to the µs (a double of epoch seconds keeps only about 0.2 µs).
    const since = (r: Reading<number>): number => Math.round((r.timestamp * 1000 - t0) * 1000) / 1e6
    const cruise = readings.filter((r) => since(r) >= ACCL && since(r) <= ACCL + fly.timeForMove)
    t.ok(cruise.length >= fly.timeForMove * 1000 / STEP_MS, `${cruise.length} readbacks at constant velocity`)
    t.ok(cruise.every((r) => (r.value - fly.start) * Math.sign(fly.end - fly.start) >= -1e-9), 'up to speed by startPosition')
    const off = readings.filter((r) => !near(r.value, trapezoid(since(r), fly)))
    t.same(off.map((r) => [since(r), r.value]), [], `all ${readings.length} readbacks on the trapezoid`)

    await motor.unstage()
    t.equal(held('VELO'), VELO, 'unstage restores VELO')
    t.equal(motor.savedVelocity, undefined)
  })
}

t.test('a fly velocity above VMAX is refused with the numbers, before anything moves', async t => {
  const at = held('RBV')
  await t.rejects(p(motor.prepare({ startPosition: 0, endPosition: 50, timeForMove: 1 })), {
    code: ErrorCode.BAD_INPUT,
    message: `rot: the fly velocity 50 deg/s (50 deg in 1 s) is above the maximum VMAX=40 deg/s (${PREFIX}.VMAX); nothing was moved`
  })
  await t.rejects(p(motor.prepare({ startPosition: 90, endPosition: 98, timeForMove: 0.5 })), {
    code: ErrorCode.BAD_INPUT, message: /the run-down end 102 deg \(4 deg past endPosition 98\) is above the high limit HLM=100 deg/
  })
  t.equal(record.moving, false)
  t.equal(held('RBV'), at)
  t.equal(held('VELO'), VELO)
})

t.test('a config file\'s EpicsMotor entry, built by createDevices, drives the same record', async t => {
  const dir = t.testdir()
  const file = join(dir, 'motor.yaml')
  await writeFile(file, [
    'ca:',
    `  addrList: "${CA.addrList}"`,
    '  autoAddrList: false',
    'devices:',
    '  EpicsMotor:',
    '    - name: rot_motor',
    `      prefix: "${PREFIX}"`,
    '      labels: [motors]',
    '      velocity: 12',
    ''
  ].join('\n'))
  const config = await loadConfigFile(file)
  t.equal(CaContext.get(config.ca), CaContext.current(), 'the file\'s ca section matches the context in use')
  const { registry, skipped } = createDevices(config)
  t.same(skipped, [])
  const built = registry.find('rot_motor')
  if (!(built instanceof EpicsMotor)) throw new Error('rot_motor is not an EpicsMotor')
  t.same(registry.findAll({ label: 'motors' }).map((d) => d.name), ['rot_motor'])
  await built.connect({ timeout: 5000 })
  t.equal((await built.read()).rot_motor?.value, held('RBV'))
  const prepared = built.prepare({ startPosition: 0, endPosition: 2, timeForMove: 1 })
  await drive(prepared)
  await prepared
  t.equal(held('VELO'), 2)
  await built.unstage()
  t.equal(held('VELO'), 12, 'the configured velocity is restored (TST restores 90 deg/s the same way)')
})
