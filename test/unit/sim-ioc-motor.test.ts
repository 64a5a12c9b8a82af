import t from 'tap'
import { DbeMask, DbrBase, type DbrValue } from '../../src/parsers/index.js'
import { ErrorCode } from '../../src/errors.js'
import { ManualClock, SimMotorRecord, planMove, type MotorOptions, type ServedPv } from '../../src/sim/ioc/index.js'

const PREFIX = 'XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr'

function setup (options: Partial<MotorOptions> = {}): { clock: ManualClock, motor: SimMotorRecord, t0: number, pv: (f?: string) => ServedPv } {
  const clock = new ManualClock()
  const motor = new SimMotorRecord({ prefix: PREFIX, velo: 10, accl: 0.5, ...options }, clock)
  const pvs = new Map(motor.pvs().map((p) => [p.name, p]))
  const pv = (f?: string): ServedPv => {
    const p = pvs.get(f === undefined ? PREFIX : `${PREFIX}.${f}`)
    if (p === undefined) throw new Error(`no PV ${f ?? 'VAL'}`)
    return p
  }
  return { clock, motor, t0: clock.nowMs(), pv }
}

const n = (v: DbrValue): number => v[0] as number
const near = (a: number, b: number, eps = 1e-9): boolean => Math.abs(a - b) <= eps

/** Settle flags for a promise, readable synchronously after `await flush()`. */
function track (p: Promise<void>): { done: boolean, error: unknown } {
  const s = { done: false, error: undefined as unknown }
  p.then(() => { s.done = true }, (err: unknown) => { s.error = err })
  return s
}
const flush = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

t.test('the fields ophyd and ophyd-async use, with the motor record\'s types', async t => {
  const { motor, pv } = setup({ egu: 'deg', prec: 3, vmax: 720, hlm: 100, llm: -100 })
  const names = motor.pvs().map((p) => p.name.slice(PREFIX.length))
  for (const f of ['', '.RBV', '.DMOV', '.MOVN', '.VELO', '.ACCL', '.VMAX', '.HLM', '.LLM', '.STOP', '.EGU', '.PREC', '.RDBD', '.MRES', '.TWV', '.TWF', '.TWR']) {
    t.ok(names.includes(f), `serves ${PREFIX}${f}`)
  }
  t.equal(pv().base, DbrBase.DOUBLE)
  t.equal(pv('DMOV').base, DbrBase.SHORT)
  t.equal(pv('EGU').base, DbrBase.STRING)
  t.equal(pv('RBV').writable, false)
  t.match(pv().metadata(), { units: 'deg', precision: 3, upperDispLimit: 100, lowerDispLimit: -100, upperCtrlLimit: 100 })
  t.equal(n(pv('DMOV').get().value), 1)
})

t.test('a trapezoid: accelerate over ACCL to VELO, cruise, decelerate; the put resolves at the end', async t => {
  // VELO 10, ACCL 0.5 s: acceleration 20/s², 2.5 units to reach speed, 2.5 to stop; 20 units take 2.5 s.
  const { clock, motor, t0, pv } = setup()
  const move = track(pv().put(Float64Array.of(20)))
  t.equal(motor.moveEndMs, t0 + 2500)
  const expect: Array<[number, number]> = [[0, 0], [250, 0.625], [500, 2.5], [1000, 7.5], [2000, 17.5], [2250, 19.375], [2500, 20], [3000, 20]]
  for (const [ms, x] of expect) t.ok(near(motor.positionAt(t0 + ms), x), `x(${ms} ms) = ${x} (got ${motor.positionAt(t0 + ms)})`)
  t.ok(near(motor.velocityAt(t0 + 1000), 10))
  clock.advance(2499)
  await flush()
  t.equal(move.done, false, 'still moving at 2499 ms')
  t.equal(motor.moving, true)
  clock.advance(1)
  await flush()
  t.equal(move.done, true, 'resolved when the move ends (put-callback semantics)')
  t.equal(n(pv('RBV').get().value), 20)
  t.equal(n(pv('DMOV').get().value), 1)
  t.equal(motor.position, 20)
})

t.test('a short move never reaches VELO: a triangle', async t => {
  const { clock, motor, t0, pv } = setup()
  const move = track(pv().put(Float64Array.of(2)))
  // Peak speed sqrt(a·d) = sqrt(40) after sqrt(d/a) = 0.3162 s; the move takes twice that.
  const half = Math.sqrt(2 / 20) * 1000
  t.ok(near(motor.moveEndMs as number, t0 + 2 * half, 1e-6))
  t.ok(near(motor.positionAt(t0 + half), 1, 1e-9), 'half way at the peak')
  t.ok(near(motor.velocityAt(t0 + half), Math.sqrt(40), 1e-9))
  t.ok(motor.velocityAt(t0 + half) < 10, 'below VELO')
  clock.advance(700)
  await flush()
  t.equal(move.done, true)
  t.equal(motor.position, 2)
})

t.test('DMOV and MOVN as a subscriber sees them, with RBV every updateMs in between', async t => {
  const { clock, pv } = setup({ updateMs: 10 })
  const events: string[] = []
  const rbv: number[] = []
  pv('DMOV').subscribe((s, mask) => { if ((mask & DbeMask.VALUE) !== 0) events.push(`DMOV=${n(s.value)}`) })
  pv('MOVN').subscribe((s, mask) => { if ((mask & DbeMask.VALUE) !== 0) events.push(`MOVN=${n(s.value)}`) })
  pv('RBV').subscribe((s) => { rbv.push(n(s.value)); if (events.at(-1) !== 'RBV') events.push('RBV') })
  const move = pv().put(Float64Array.of(20))
  clock.advance(3000)
  await move
  t.same(events, ['DMOV=0', 'MOVN=1', 'RBV', 'MOVN=0', 'DMOV=1'])
  t.equal(rbv.length, 250, 'one RBV per 10 ms from 10 ms to 2490 ms, then the final position')
  t.ok(rbv.every((x, i) => i === 0 || x > (rbv[i - 1] as number)), 'RBV climbs monotonically')
  t.equal(rbv.at(-1), 20)
})

t.test('a move to where the motor is pulses DMOV and resolves at once', async t => {
  const { pv } = setup({ value: 5 })
  const dmov: number[] = []
  pv('DMOV').subscribe((s) => dmov.push(n(s.value)))
  await pv().put(Float64Array.of(5))
  t.same(dmov, [0, 1])
})

t.test('VAL outside HLM/LLM is refused, naming the limit; LVIO shows it', async t => {
  const { motor, pv } = setup({ hlm: 100, llm: -100 })
  await t.rejects(pv().put(Float64Array.of(150)), { code: ErrorCode.BAD_INPUT, message: `${PREFIX}: target 150 is above the high limit HLM=100` })
  t.equal(n(pv('LVIO').get().value), 1)
  await t.rejects(pv().put(Float64Array.of(-100.5)), { message: /below the low limit LLM=-100/ })
  t.equal(n(pv().get().value), 0, 'VAL unchanged')
  t.equal(motor.moving, false)
  await pv('HLM').put(Float64Array.of(200))
  t.equal(n(pv('DHLM').get().value), 200, 'dial limits follow (no offset)')
  t.equal(pv().metadata().upperCtrlLimit, 200)
  const ok = pv().put(Float64Array.of(0))
  t.equal(n(pv('LVIO').get().value), 0)
  await ok
  const free = setup()
  const far = track(free.pv().put(Float64Array.of(1e6)))
  t.equal(free.motor.moving, true, 'HLM = LLM = 0: no soft limits')
  free.motor.close()
  await flush()
  t.match(far.error, { code: ErrorCode.CANCELLED })
})

t.test('VELO above VMAX is clamped when VMAX > 0', async t => {
  const { pv } = setup({ vmax: 720 })
  await pv('VELO').put(Float64Array.of(1000))
  t.equal(n(pv('VELO').get().value), 720)
  await pv('VMAX').put(Float64Array.of(100))
  t.equal(n(pv('VELO').get().value), 100, 'lowering VMAX lowers VELO')
  await pv('VMAX').put(Float64Array.of(0))
  await pv('VELO').put(Float64Array.of(5000))
  t.equal(n(pv('VELO').get().value), 5000, 'VMAX 0: no maximum')
  t.equal(n(setup({ velo: 900, vmax: 720 }).pv('VELO').get().value), 720, 'clamped at start too')
})

t.test('STOP=1 decelerates at the move\'s rate; the pending put resolves when stopped; VAL is where it stopped', async t => {
  const { clock, motor, t0, pv } = setup({ accl: 1 })
  const move = track(pv().put(Float64Array.of(100)))
  clock.advance(3000)
  t.ok(near(motor.position, 25), 'cruising at 10/s after 1 s of acceleration')
  await pv('STOP').put(Int16Array.of(1))
  t.equal(n(pv('STOP').get().value), 0, 'STOP resets itself')
  t.equal(n(pv().get().value), 30, 'VAL: 25 + v²/2a')
  t.equal(motor.moveEndMs, t0 + 4000)
  clock.advance(999)
  await flush()
  t.equal(move.done, false)
  clock.advance(1)
  await flush()
  t.equal(move.done, true)
  t.equal(motor.position, 30)
  t.equal(n(pv('DMOV').get().value), 1)
  await pv('STOP').put(Int16Array.of(1))
  t.equal(n(pv().get().value), 30, 'STOP at rest changes nothing')
})

t.test('a new VAL during a move retargets: turning round when it must', async t => {
  const { clock, motor, t0, pv } = setup({ accl: 1 })
  const first = track(pv().put(Float64Array.of(100)))
  clock.advance(2000)
  t.ok(near(motor.position, 15))
  const dmov: number[] = []
  pv('DMOV').subscribe((s) => dmov.push(n(s.value)))
  const second = track(pv().put(Float64Array.of(10)))
  // Decelerate 1 s to 20 (at 3 s), then 20 → 10: 5 units to reach 10/s, 5 to stop: a triangle peaking at 10/s.
  t.ok(near(motor.positionAt(t0 + 3000), 20), 'stops at 20 before turning round')
  t.ok(near(motor.velocityAt(t0 + 3000), 0))
  t.ok(near(motor.velocityAt(t0 + 4000), -10))
  t.equal(motor.moveEndMs, t0 + 5000)
  clock.advance(2999)
  await flush()
  t.same([first.done, second.done], [false, false])
  t.same(dmov, [], 'DMOV stays 0 through a retarget')
  clock.advance(1)
  await flush()
  t.same([first.done, second.done], [true, true], 'every pending put resolves when the motor stops')
  t.equal(motor.position, 10)
  t.same(dmov, [1])
})

t.test('a retarget further on keeps cruising', async t => {
  const { clock, motor, t0, pv } = setup({ accl: 1 })
  track(pv().put(Float64Array.of(20)))
  clock.advance(1000)
  const move = pv().put(Float64Array.of(50))
  // From 5 at full speed: 40 units of cruise (4 s) and 5 to stop (1 s).
  t.equal(motor.moveEndMs, t0 + 6000)
  t.ok(near(motor.velocityAt(t0 + 3000), 10))
  clock.advance(5000)
  await move
  t.equal(motor.position, 50)
})

t.test('ACCL 0 changes speed instantly; TWF/TWR tweak by TWV', async t => {
  const { clock, motor, t0, pv } = setup({ accl: 0 })
  const move = pv().put(Float64Array.of(10))
  t.equal(motor.moveEndMs, t0 + 1000)
  t.ok(near(motor.positionAt(t0 + 500), 5))
  clock.advance(1000)
  await move
  await pv('TWV').put(Float64Array.of(2.5))
  const fwd = pv('TWF').put(Int16Array.of(1))
  t.equal(n(pv().get().value), 12.5)
  t.equal(n(pv('TWF').get().value), 0)
  clock.advance(1000)
  await fwd
  const rev = pv('TWR').put(Int16Array.of(1))
  clock.advance(1000)
  await rev
  t.equal(motor.position, 10)
})

t.test('positionAt is exact between RBV updates, for an encoder that follows the motor', async t => {
  const { clock, motor, t0, pv } = setup({ updateMs: 100 })
  track(pv().put(Float64Array.of(20)))
  clock.advance(1234)
  t.equal(n(pv('RBV').get().value), motor.positionAt(t0 + 1200), 'RBV was last posted at 1200 ms')
  t.ok(near(motor.position, 2.5 + 10 * 0.734), 'positionAt(now) is exact')
  t.ok(near(motor.positionAt(t0 + 1234.5), 2.5 + 10 * 0.7345))
})

t.test('EGU and PREC changes post PROPERTY on VAL and RBV', async t => {
  const { pv } = setup()
  const masks: number[] = []
  pv().subscribe((_s, mask) => masks.push(mask))
  await pv('EGU').put(['mrad'])
  t.same(masks, [DbeMask.PROPERTY])
  t.equal(pv('RBV').metadata().units, 'mrad')
})

t.test('close rejects pending moves and stops the timer', async t => {
  const { clock, motor, pv } = setup()
  const move = pv().put(Float64Array.of(20))
  motor.close()
  await t.rejects(move, { code: ErrorCode.CANCELLED, message: /the simulated IOC closed/ })
  t.equal(clock.pending, 0)
  await t.rejects(pv().put(Float64Array.of(1)), { code: ErrorCode.CANCELLED })
  motor.close()
})

t.test('planMove from motion: segments join without jumps in position or velocity', async t => {
  const cases: Array<[number, number, number]> = [[0, 0, 30], [5, 10, -20], [0, -8, 3], [2, 12, 50], [0, 4, 0.1]]
  for (const [x, v, target] of cases) {
    const p = planMove(x, v, target, 10, 20, 0)
    let px = x
    let pv = v
    for (const s of p.segments) {
      t.ok(near(s.x0, px, 1e-9) && near(s.v0, pv, 1e-9), `(${x}, ${v}) → ${target}: continuous at ${s.t0Ms} ms`)
      px = s.x0 + s.v0 * s.durS + s.a * s.durS ** 2 / 2
      pv = s.v0 + s.a * s.durS
      t.ok(Math.abs(pv) <= Math.max(10, Math.abs(v)) + 1e-9, 'never faster than VELO (or the starting speed)')
    }
    t.ok(near(px, target, 1e-9) && near(pv, 0, 1e-9), `(${x}, ${v}) → ${target}: ends at rest on the target`)
  }
})
