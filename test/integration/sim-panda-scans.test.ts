/**
 * Both TST fly-scan setups (../shared/DESIGN.md §6, ../shared/panda-protocol.md §3.1) driven through
 * PandaControlClient against the simulated PandA, with a scripted motor on a manual clock, a camera stand-in on
 * TTLOUT1 and a data client: row counts, timestamps and captured positions against the configured motion, and as
 * many camera triggers as rows.
 */
import t, { type Test } from 'tap'
import { PandaControlClient } from '../../src/panda/index.js'
import { ADC_DEFAULTS, ManualClock, SimPanda, edgeFraction, type TriggerEdge } from '../../src/sim/index.js'
import { trackLeaks } from '../support/leaks.js'
import { DataReader, col, settle, waitFor } from './sim-panda-support.js'

const CPD = 8000 / 360

interface Scan {
  readonly panda: SimPanda
  readonly client: PandaControlClient
  readonly clock: ManualClock
  readonly reader: DataReader
  readonly triggers: TriggerEdge[]
  readonly t0: number
  /** Advances the clock to `ms` after start in 1 ms steps. */
  runTo: (ms: number) => Promise<void>
}

/** The motor is at `deg(ms)` degrees, ms from the start of the clock. */
async function scan (t: Test, deg: (ms: number) => number, edgeDeg?: number): Promise<Scan> {
  trackLeaks(t)
  const clock = new ManualClock()
  const t0 = clock.nowMs()
  const triggers: TriggerEdge[] = []
  // A stand-in for the simulated camera: the same externalTrigger({ atMs }) entry point.
  const camera = { externalTrigger: (e: TriggerEdge) => { triggers.push(e) } }
  const panda = await SimPanda.start({
    clock, motor: { positionAt: (ms) => deg(ms - t0) }, triggerSinks: [camera], ...(edgeDeg === undefined ? {} : { adc: { edgeDeg } })
  })
  t.teardown(async () => { await panda.close() })
  const client = await PandaControlClient.connect('127.0.0.1', panda.controlPort, 2000)
  t.teardown(async () => { await client.close() })
  const reader = await DataReader.connect(panda.dataPort, 'XML FRAMED SCALED')
  t.teardown(() => reader.close())
  await waitFor(() => reader.text.startsWith('OK\n'), 2000, () => 'OK')
  return {
    panda,
    client,
    clock,
    reader,
    triggers,
    t0,
    runTo: async (ms) => {
      while (clock.nowMs() - t0 < ms) {
        clock.advanceTo(Math.min(clock.nowMs() + 1, t0 + ms))
        if (Math.round(clock.nowMs() - t0) % 20 === 0) await settle(1)
      }
      await settle(10)
    }
  }
}

async function setAll (client: PandaControlClient, settings: Array<[string, string | number]>): Promise<void> {
  await Promise.all(settings.map(async ([target, value]) => { await client.put(target, value) }))
}

t.test('tomography: PCOMP steps the camera every STEP counts; rows carry the angle and time of each frame', async t => {
  const images = 9
  const step = 8000 / (2 * (images - 1))
  const startDeg = 10
  const start = Math.round(startDeg * CPD)
  const speed = 180 // deg/s, from 5 degrees
  const s = await scan(t, (ms) => 5 + speed * ms / 1000)
  t.equal(step, 500)
  await setAll(s.client, [
    ['PCOMP1.INP', 'INENC1.VAL'], ['PCOMP1.START', start], ['PCOMP1.STEP', step], ['PCOMP1.WIDTH', 50],
    ['PCOMP1.PULSES', images], ['PCOMP1.RELATIVE', 'Absolute'], ['PCOMP1.DIR', 'Positive'],
    ['TTLOUT1.VAL', 'PCOMP1.OUT'], ['PCAP.TRIG', 'PCOMP1.OUT'], ['PCAP.TRIG_EDGE', 'Rising'], ['PCAP.GATE', 'ONE'],
    ['PCAP.ENABLE', 'PCOMP1.ACTIVE'], ['INENC1.VAL.SCALE', 360 / 8000], ['INENC1.VAL.UNITS', 'deg'],
    ['INENC1.VAL.CAPTURE', 'Value'], ['PCAP.TS_TRIG.CAPTURE', 'Value']
  ])
  await s.client.arm()
  await s.runTo(20)
  await s.client.put('PCOMP1.ENABLE', 'ONE')
  const enableMs = s.clock.nowMs() - s.t0
  await s.runTo(1200)
  const [acq] = await s.reader.ended(1)
  if (acq === undefined) throw new Error('no acquisition')
  t.equal(acq.end?.reason, 'Ok', 'the capture ended when PCOMP1.ACTIVE fell after the last image')
  t.equal(acq.rows.length, images, 'one row per image')
  t.equal(s.triggers.length, images, 'one camera trigger per row')
  const angle = acq.rows.map((r) => r[col(acq.start, 'INENC1.VAL', 'Value')] as number)
  const ts = acq.rows.map((r) => r[col(acq.start, 'PCAP.TS_TRIG', 'Value')] as number)
  angle.forEach((a, k) => t.ok(Math.abs(a - (start + k * step) * 360 / 8000) < 1e-9, `image ${k} at ${a} deg: START + ${k} STEP`))
  const stepS = step / CPD / speed
  ts.forEach((x, k) => {
    // The first tick the encoder (rounded) reads START + k STEP, from when PCAP was enabled.
    const expected = ((start + k * step - 0.5) / CPD - 5) / speed - enableMs / 1000
    t.ok(Math.abs(x - expected) < 1e-6, `TS_TRIG ${k}: ${x} s, expected ${expected}`)
    if (k > 0) t.ok(Math.abs(x - (ts[k - 1] as number) - stepS) < 1e-6, `spacing ${x - (ts[k - 1] as number)} s = one step`)
  })
  s.triggers.forEach((e, k) => {
    t.equal(e.ttlout, 1)
    t.ok(Math.abs(e.atMs - s.t0 - enableMs - (ts[k] as number) * 1000) < 1e-3, `trigger ${k} at the row's time`)
  })
  t.equal(await s.client.getField('PCOMP1', 'PRODUCED'), String(images))
  t.equal(await s.client.getField('PCAP', 'ACTIVE'), '0')
})

/** DESIGN.md §6's XAS layout: INENC1 → CALC1 (sign flip) → PCOMP1 relative; PCAP enabled by PCOMP1.ACTIVE; CLOCK1 10 ms. */
function xasSettings (pulses: number, width: number): Array<[string, string | number]> {
  return [
    ['CALC1.INPA', 'INENC1.VAL'], ['CALC1.TYPEA', '-Value'], ['PCOMP1.INP', 'CALC1.OUT'], ['PCOMP1.RELATIVE', 'Relative'],
    ['PCOMP1.DIR', 'Positive'], ['PCOMP1.START', 22], ['PCOMP1.WIDTH', width], ['PCOMP1.PULSES', pulses],
    ['PCAP.ENABLE', 'PCOMP1.ACTIVE'], ['CLOCK1.ENABLE', 'PCAP.ACTIVE'], ['CLOCK1.PERIOD', 0.01], ['CLOCK1.WIDTH', 0.009999],
    ['PCAP.GATE', 'CLOCK1.OUT'], ['PCAP.TRIG', 'CLOCK1.OUT'], ['PCAP.TRIG_EDGE', 'Falling'], ['TTLOUT1.VAL', 'CLOCK1.OUT'],
    ['CALC1.OUT.CAPTURE', 'Mean'], ['FMC_IN.VAL1.CAPTURE', 'Mean'], ['FMC_IN.VAL2.CAPTURE', 'Mean'],
    ['PCAP.BITS1.CAPTURE', 'Value'], ['PCAP.TS_TRIG.CAPTURE', 'Value']
  ]
}

t.test('XAS: a row per 10 ms clock period with the mean angle and ADC means; the absorption edge shows', async t => {
  const speed = -4 // deg/s from 0: down through the edge at -1 degree
  const s = await scan(t, (ms) => speed * ms / 1000, -1)
  await setAll(s.client, xasSettings(0, 4000))
  await s.client.arm()
  await s.client.put('PCOMP1.ENABLE', 'ONE')
  // PCOMP1 (START 22, PULSES 0) stays ACTIVE; the scan ends by disabling it, between a falling and a rising edge.
  await s.runTo(500 - 0.0005)
  await s.client.put('PCOMP1.ENABLE', 'ZERO')
  const [acq] = await s.reader.ended(1)
  if (acq === undefined) throw new Error('no acquisition')
  t.equal(acq.end?.reason, 'Ok')
  t.equal(acq.rows.length, 50, '500 ms of 10 ms periods')
  t.equal(s.triggers.length, 50, 'TTLOUT1 = CLOCK1.OUT gave the camera as many triggers as rows')
  t.same(acq.start.fields.map((f) => `${f.name}.${f.capture}`),
    ['PCAP.BITS1.Value', 'PCAP.TS_TRIG.Value', 'FMC_IN.VAL1.Mean', 'FMC_IN.VAL2.Mean', 'CALC1.OUT.Mean'],
    'uint32 first, then 64-bit timestamps, then the means in registration order')
  const mus: number[] = []
  acq.rows.forEach((r, k) => {
    const ts = r[col(acq.start, 'PCAP.TS_TRIG', 'Value')] as number
    t.ok(Math.abs(ts - (0.01 * k + 0.009999)) < 1e-9, `row ${k}: TS_TRIG ${ts} at the falling clock edge`)
    const mid = 0.01 * k + 0.009999 / 2
    const calc = r[col(acq.start, 'CALC1.OUT', 'Mean')] as number
    t.ok(Math.abs(calc - -speed * CPD * mid) < 0.6, `row ${k}: mean CALC1.OUT ${calc} is the flipped encoder mid-period`)
    const i0 = r[col(acq.start, 'FMC_IN.VAL1', 'Mean')] as number
    const it = r[col(acq.start, 'FMC_IN.VAL2', 'Mean')] as number
    const mu = Math.log(i0 / it)
    mus.push(mu)
    const expected = ADC_DEFAULTS.muBelow + ADC_DEFAULTS.muJump * edgeFraction(speed * mid, { ...ADC_DEFAULTS, edgeDeg: -1 })
    t.ok(Math.abs(mu - expected) < 0.03, `row ${k}: ln(I0/It) ${mu.toFixed(4)} ≈ μ(θ) ${expected.toFixed(4)}`)
  })
  t.ok((mus[49] as number) - (mus[0] as number) > 0.9 * ADC_DEFAULTS.muJump, 'the edge: μ rose by the jump across the scan')
  const steepest = mus.slice(1).map((m, k) => m - (mus[k] as number)).reduce((best, d, k, all) => d > (all[best] as number) ? k : best, 0)
  t.ok(Math.abs(speed * 0.01 * (steepest + 1) - -1) < 0.05, `the steepest rise is at the edge angle (row ${steepest + 1})`)
})

t.test('XAS gated by the PCOMP window (PCAP.ENABLE = PCOMP1.OUT, PULSES=1, as src/panda/trigger-logic.ts sets it)', async t => {
  const speed = -20
  const s = await scan(t, (ms) => speed * ms / 1000)
  await setAll(s.client, [...xasSettings(1, 222), ['PCOMP1.STEP', 223], ['PCAP.ENABLE', 'PCOMP1.OUT']])
  await s.client.arm()
  await s.client.put('PCOMP1.ENABLE', 'ONE')
  await s.runTo(700)
  const [acq] = await s.reader.ended(1)
  if (acq === undefined) throw new Error('no acquisition')
  t.equal(acq.end?.reason, 'Ok', 'the window closed at START + WIDTH, and PCAP.ENABLE with it')
  // CALC1.OUT = -INENC1 (444.4 counts/s) reaches START 22 at 21.5 / 444.4 s = 48.375 ms and START + WIDTH 244 at
  // 547.875 ms; the clock (running from the arm) falls at 10k + 9.999 ms.
  const counts = -speed * CPD / 1000
  const openMs = 21.5 / counts
  const closeMs = 243.5 / counts
  const falls = Array.from({ length: 70 }, (_, k) => 10 * k + 9.999).filter((f) => f > openMs && f <= closeMs)
  t.equal(acq.rows.length, falls.length, `${falls.length} clock periods end inside the window`)
  acq.rows.forEach((r, k) => {
    const ts = r[col(acq.start, 'PCAP.TS_TRIG', 'Value')] as number
    t.ok(Math.abs(ts * 1000 - ((falls[k] as number) - openMs)) < 1e-3, `row ${k}: ${ts * 1000} ms after the window opened`)
  })
  t.equal(s.triggers.length, Math.ceil(closeMs / 10), 'the camera saw every clock period from the arm until PCAP.ACTIVE fell')
  t.equal(await s.client.getField('PCOMP1', 'PRODUCED'), '1')
  t.equal(await s.client.getField('PCOMP1', 'ACTIVE'), '0')
  t.equal(await s.client.getField('PCAP', 'ACTIVE'), '0')
})
