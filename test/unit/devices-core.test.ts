import t from 'tap'
import {
  AsyncStatus, Device, SignalR, SignalRW, softSignalRAndSetter, softSignalRW, softSignalX, SimMotor, SimDetector, VirtualClock,
  isReadable, isMovable, isStoppable, isLocatable, isTriggerable, isStageable, isConfigurable, isFlyable, isCollectable,
  isPreparable, isSubscribable, type WatcherUpdate, DEFAULT_TIMEOUT_MS
} from '../../src/devices/index.js'
import {
  SoftSignalBackend, setMockValue, callbackOnMockPut, getMockPutCalls, setMockPutProceeds, type SignalBackend
} from '../../src/backends/index.js'
import { isFlyScanError, ErrorCode } from '../../src/errors.js'

t.test('AsyncStatus: done/success/error, callbacks, wrap, watchable', async t => {
  const ok = AsyncStatus.wrap(async (x: number) => x * 2)(21)
  t.equal(ok.done, false)
  t.equal(ok.success, undefined)
  const seen: boolean[] = []
  ok.addCallback((s) => { seen.push(s.success === true) })
  t.equal(await ok, 42)
  t.same(seen, [true])
  t.equal(ok.done, true)
  const late: boolean[] = []
  ok.addCallback((s) => { late.push(s.done) })
  await Promise.resolve()
  t.same(late, [true])

  const bad = AsyncStatus.rejected(new Error('boom'))
  await t.rejects(async () => { await bad }, /boom/)
  t.equal(bad.success, false)
  t.equal(bad.error?.message, 'boom')

  const updates: WatcherUpdate[] = []
  const w = AsyncStatus.watchable(async (report) => {
    report({ current: 1, target: 3 })
    await Promise.resolve()
    report({ current: 3, target: 3 })
  })
  w.watch((u) => updates.push(u))
  await w
  t.same(updates.map((u) => u.current), [1, 3], 'the latest update is replayed to a late watcher')
  t.ok(DEFAULT_TIMEOUT_MS > 0)
})

class Stage extends Device {
  readonly x = softSignalRW<number>('number', 1, { units: 'mm' })
  readonly y = softSignalRW<number>('number', 2)
  constructor (name = '') { super(); this.setName(name) }
}

class Broken implements SignalBackend<number> {
  dtype = 'number' as const
  metadata = {}
  constructor (readonly why: string) {}
  source (name: string) { return `ca://${name}` }
  async connect () { throw new Error(this.why) }
  async put () {}
  async getDatakey (source: string) { return { dtype: 'number' as const, shape: [], source } }
  async getReading () { return { value: 0, timestamp: 0 } }
  async getValue () { return 0 }
  async getSetpoint () { return 0 }
  setCallback () {}
}

class Rig extends Device {
  readonly stage = new Stage()
  readonly good = softSignalRW<string>('string', 'a')
  readonly bad1 = new SignalR<number>(new Broken('no PV XF:1'))
  readonly bad2 = new SignalRW<number>(new Broken('host unreachable'))
  constructor (name = '') { super(); this.setName(name) }
}

t.test('names are derived from the parent; read/describe/subscribe', async t => {
  const s = new Stage('st')
  t.equal(s.x.name, 'st-x')
  t.equal(s.x.parent, s)
  t.same(s.children().map(([k]) => k), ['x', 'y'])
  const rig = new Rig('rig')
  t.equal(rig.stage.y.name, 'rig-stage-y')
  const r = await s.x.read()
  t.equal(r['st-x']?.value, 1)
  const d = await s.x.describe()
  t.same(d['st-x'], { dtype: 'number', shape: [], source: 'soft://st-x', units: 'mm' })
  const values: number[] = []
  const un = s.x.subscribeValue((v) => values.push(v))
  await s.x.set(5)
  un()
  await s.x.set(6)
  t.same(values, [1, 5])
  t.same(await s.x.locate(), { setpoint: 6, readback: 6 })
})

t.test('connect aggregates every failure into one NOT_CONNECTED error', async t => {
  const rig = new Rig('rig')
  const err = await rig.connect({ timeout: 1000 }).then(() => undefined, (e: unknown) => e)
  t.ok(isFlyScanError(err, ErrorCode.NOT_CONNECTED))
  const msg = (err as Error).message
  t.match(msg, /^rig: 2 parts failed to connect/)
  t.match(msg, /rig-bad1: no PV XF:1/)
  t.match(msg, /rig-bad2: host unreachable/)
  t.notMatch(msg, /rig-good/)
  await t.resolves(new Stage('ok').connect())
})

t.test('mock mode swaps every backend; helpers drive it', async t => {
  const rig = new Rig('rig')
  await rig.connect({ mock: true })
  t.match(rig.bad1.source, /^mock\+ca:\/\/rig-bad1/)
  setMockValue(rig.bad1, 7)
  t.equal(await rig.bad1.getValue(), 7)
  const puts: Array<number | undefined> = []
  callbackOnMockPut(rig.bad2, (v) => { puts.push(v) })
  await rig.bad2.set(3)
  t.same(puts, [3])
  t.same(getMockPutCalls(rig.bad2), [{ value: 3, wait: true }])
  setMockPutProceeds(rig.bad2, false)
  const held = rig.bad2.set(4)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(held.done, false)
  setMockPutProceeds(rig.bad2, true)
  await held
  t.equal(await rig.bad2.getValue(), 4)
  const err = await rig.connect().then(() => undefined, (e: unknown) => e)
  t.match((err as Error).message, /mock mode/)
  t.throws(() => { setMockValue(new Stage('s').x, 1) }, /not in mock mode/)
})

t.test('soft setter and SignalX', async t => {
  const [r, setR] = softSignalRAndSetter<number>('integer', 3)
  r.setName('ro')
  setR(9)
  t.equal(await r.getValue(), 9)
  const x = softSignalX({ name: 'go' })
  await x.connect({ mock: true })
  await x.trigger()
  t.same(getMockPutCalls(x), [{ value: undefined, wait: true }])
  t.ok(new SoftSignalBackend<number>('number').source('a').startsWith('soft://'))
})

t.test('timeouts name the signal, value and bound', async t => {
  const s = softSignalRW<number>('number', 0, { name: 'slow' })
  await s.connect({ mock: true })
  setMockPutProceeds(s, false)
  const err = await s.set(1, { timeout: 5 }).then(() => undefined, (e: unknown) => e)
  t.ok(isFlyScanError(err, ErrorCode.TIMEOUT))
  t.match((err as Error).message, /setting slow to 1 did not finish within 5 ms/)
})

t.test('SimMotor moves in virtual time with progress, limits and stop', async t => {
  const clock = new VirtualClock()
  const m = new SimMotor({ name: 'm1', velocity: 10, lowLimit: -100, highLimit: 100, clock, updatePeriodMs: 100 })
  t.ok(isMovable(m) && isReadable(m) && isStoppable(m) && isLocatable(m) && isConfigurable(m))
  t.notOk(isFlyable(m) || isTriggerable(m) || isCollectable(m) || isPreparable(m))
  await m.connect({ mock: true })
  t.equal(m.userSetpoint.name, 'm1-userSetpoint')
  t.equal(m.userReadback.name, 'm1')
  const updates: number[] = []
  const st = m.set(5)
  st.watch((u) => updates.push(u.current))
  await st
  t.equal(updates.length, 5, '0.5 s at 100 ms per update')
  t.equal(updates.at(-1), 5)
  t.equal(clock.now(), 500)
  t.same(await m.locate(), { setpoint: 5, readback: 5 })
  const rd = await m.read()
  t.same(Object.keys(rd), ['m1', 'm1-userSetpoint'])
  t.same(Object.keys(await m.readConfiguration()), ['m1-velocity', 'm1-lowLimitTravel', 'm1-highLimitTravel'])
  t.same(m.hints, { fields: ['m1'] })

  const err = await m.set(500).then(() => undefined, (e: unknown) => e)
  t.ok(isFlyScanError(err, ErrorCode.BAD_INPUT))
  t.match((err as Error).message, /m1: target 500 is outside the limits \[-100, 100\]/)

  const moving = m.set(50)
  await new Promise((resolve) => setImmediate(resolve))
  await m.stop()
  await t.rejects(async () => { await moving }, { code: ErrorCode.CANCELLED })
  const pos = await m.userReadback.getValue()
  t.ok(pos > 5 && pos < 50, `stopped between: ${pos}`)
  t.equal(await m.motorDoneMove.getValue(), true)
  t.equal(getMockPutCalls(m.motorStop).length, 1)
})

t.test('SimDetector triggers, reads and stages', async t => {
  const clock = new VirtualClock()
  const d = new SimDetector({ name: 'det', acquireTime: 0.1, clock })
  t.ok(isReadable(d) && isTriggerable(d) && isStageable(d) && isConfigurable(d))
  t.notOk(isSubscribable(d))
  t.ok(isSubscribable(d.value))
  await d.connect()
  await d.stage()
  await d.trigger()
  await d.trigger()
  t.equal((await d.read()).det?.value, 1002)
  t.equal(clock.now(), 200)
  t.same((await d.describe()).det?.dtype, 'integer')
  await d.unstage()
  t.equal(d.staged, false)
})
