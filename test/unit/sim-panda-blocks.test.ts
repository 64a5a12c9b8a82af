/**
 * The simulated blocks on their timeline, without sockets, on a manual clock: CLOCK, PULSE, COUNTER, PCOMP (exact
 * crossing ticks, never twice at one position, relative and guessed direction, PULSES=0, a jump), SEQ, PCAP
 * (Value, Diff, Sum, Min, Max, Mean, GATE_DURATION, timestamps, the three ways a capture ends) and the ADC edge.
 */
import t from 'tap'
import {
  ADC_DEFAULTS, ADC_VOLTS_PER_COUNT, PandaSimulation, edgeFraction, type CaptureLayout, type CaptureSink,
  type Completion, type MotorLike, type TriggerEdge
} from '../../src/sim/panda/index.js'
import { ManualClock } from '../../src/sim/index.js'

const CPD = 8000 / 360
const TICK_S = 8e-9

interface Rig {
  readonly sim: PandaSimulation
  readonly clock: ManualClock
  readonly edges: TriggerEdge[]
  /** Moves time on by `ms` and runs the blocks up to it. */
  run: (ms: number) => void
  put: (settings: Record<string, string | number>) => void
  value: (target: string) => string
}

/** A simulation whose motor position (degrees) is `deg(ms since start)`; every TTLOUT edge is recorded. */
function rig (deg?: (ms: number) => number): Rig {
  const clock = new ManualClock()
  const t0 = clock.nowMs()
  const motor: MotorLike | undefined = deg === undefined ? undefined : { positionAt: (ms) => deg(ms - t0) }
  const edges: TriggerEdge[] = []
  const sinks = Array.from({ length: 10 }, () => ({ externalTrigger: (e: TriggerEdge) => { edges.push(e) } }))
  const sim = new PandaSimulation({ clock, motor, triggerSinks: sinks })
  return {
    sim,
    clock,
    edges,
    run: (ms) => {
      clock.advance(ms)
      sim.sync()
    },
    put: (settings) => { for (const [k, v] of Object.entries(settings)) sim.put(k, v) },
    value: (target) => {
      const r = sim.get(target)
      return r.kind === 'one' ? r.value : r.lines.join(',')
    }
  }
}

interface Captured {
  layout: CaptureLayout
  rows: number[][]
  ended: Completion | undefined
  started: number | undefined
}

/** Arms PCAP and decodes its rows (SCALED, header order). */
function capture (r: Rig): Captured {
  const out: Captured = { layout: r.sim.layout(), rows: [], ended: undefined, started: undefined }
  const sink: CaptureSink = {
    started: (tick) => { out.started = tick },
    rows: (bytes, count) => {
      const scaled = out.layout.toScaled(bytes, count)
      const v = new DataView(scaled.buffer)
      const fields = out.layout.outputFields('SCALED')
      let o = 0
      for (let i = 0; i < count; i++) {
        const row: number[] = []
        for (const f of fields) {
          if (f.type === 'uint32') { row.push(v.getUint32(o, true)); o += 4 } else { row.push(v.getFloat64(o, true)); o += 8 }
        }
        out.rows.push(row)
      }
    },
    ended: (reason) => { out.ended = reason }
  }
  r.sim.arm(sink, out.layout)
  return out
}

const columns = (c: Captured): string[] => c.layout.outputFields('SCALED').map((f) => `${f.name}.${f.capture}`)
const column = (c: Captured, name: string): number[] => {
  const i = columns(c).indexOf(name)
  if (i < 0) throw new Error(`${name} not captured: ${columns(c).join(', ')}`)
  return c.rows.map((row) => row[i] as number)
}

t.test('CLOCK: edges every PERIOD, high for WIDTH, on exact ticks', async t => {
  const r = rig()
  r.put({ 'CLOCK1.PERIOD': 0.001, 'CLOCK1.WIDTH': 0.00025, 'TTLOUT1.VAL': 'CLOCK1.OUT', 'CLOCK1.ENABLE': 'ONE' })
  r.run(10.5)
  t.equal(r.edges.length, 11, 'rising edges at 0, 1, ... 10 ms')
  r.edges.forEach((e, k) => t.ok(Math.abs(e.atMs - r.sim.t0Ms - k) < 1e-6, `edge ${k} at ${k} ms`))
  t.equal(r.value('CLOCK1.OUT'), '0', 'low between 0.25 and 1 ms of a period')
  r.put({ 'CLOCK1.ENABLE': 'ZERO' })
  r.run(5)
  t.equal(r.edges.length, 11, 'a falling ENABLE stops it')
  r.put({ 'CLOCK2.PERIOD': 0.001, 'CLOCK2.WIDTH': 0, 'TTLOUT2.VAL': 'CLOCK2.OUT', 'CLOCK2.ENABLE': 'ONE' })
  r.run(0.4)
  t.equal(r.value('CLOCK2.OUT'), '1', 'WIDTH=0: high for half the period')
  r.run(0.2)
  t.equal(r.value('CLOCK2.OUT'), '0')
})

t.test('PULSE: DELAY, WIDTH, PULSES and STEP per input edge; WIDTH=0 is a delay line', async t => {
  const r = rig()
  r.put({
    'CLOCK1.PERIOD': 0.001,
    'CLOCK1.WIDTH': 0.0001,
    'PULSE1.TRIG': 'CLOCK1.OUT',
    'PULSE1.DELAY': 0.0001,
    'PULSE1.WIDTH': 0.0002,
    'PULSE1.PULSES': 2,
    'PULSE1.STEP': 0.0004,
    'PULSE1.ENABLE': 'ONE',
    'TTLOUT1.VAL': 'PULSE1.OUT',
    'CLOCK1.ENABLE': 'ONE'
  })
  r.run(2.95)
  // Edge times come back as clock milliseconds since 1970, good to about 0.25 µs.
  const at = r.edges.map((e) => Math.round((e.atMs - r.sim.t0Ms) * 1e3) / 1e3)
  t.same(at, [0.1, 0.5, 1.1, 1.5, 2.1, 2.5])
  const d = rig()
  d.put({
    'CLOCK1.PERIOD': 0.001,
    'CLOCK1.WIDTH': 0.0003,
    'PULSE1.TRIG': 'CLOCK1.OUT',
    'PULSE1.DELAY': 0.0002,
    'PULSE1.ENABLE': 'ONE',
    'TTLOUT1.VAL': 'PULSE1.OUT',
    'CLOCK1.ENABLE': 'ONE'
  })
  d.run(0.45)
  t.equal(d.value('PULSE1.OUT'), '1', 'the input pulse 0.2 ms later...')
  d.run(0.1)
  t.equal(d.value('PULSE1.OUT'), '0', '...and as long')
  t.equal(d.value('PULSE1.QUEUED'), '0')
})

t.test('COUNTER counts edges from START by STEP; PCAP captures it', async t => {
  const r = rig()
  r.put({
    'CLOCK1.PERIOD': 0.001,
    'CLOCK1.WIDTH': 0.0005,
    'COUNTER1.TRIG': 'CLOCK1.OUT',
    'COUNTER1.START': 5,
    'COUNTER1.STEP': 2,
    'COUNTER1.ENABLE': 'ONE',
    'PCAP.TRIG': 'CLOCK1.OUT',
    'PCAP.TRIG_EDGE': 'Falling',
    'PCAP.ENABLE': 'ONE',
    'PCAP.GATE': 'ONE'
  })
  r.put({ 'COUNTER1.OUT.CAPTURE': 'Value', 'CLOCK1.ENABLE': 'ONE' })
  const c = capture(r)
  r.run(4.9)
  t.same(column(c, 'COUNTER1.OUT.Value'), [7, 9, 11, 13, 15], 'START + STEP × edges')
  r.put({ 'COUNTER1.SET': 100 })
  t.equal(r.value('COUNTER1.OUT'), '100', 'SET sets it at once')
})

/** Piecewise-linear motion through (ms, counts) points, in degrees. */
function path (points: Array<[number, number]>): (ms: number) => number {
  return (ms) => {
    let prev = points[0] as [number, number]
    for (const p of points) {
      if (ms <= p[0]) return (prev[0] === p[0] ? p[1] : prev[1] + (p[1] - prev[1]) * (ms - prev[0]) / (p[0] - prev[0])) / CPD
      prev = p
    }
    return prev[1] / CPD
  }
}

function tomoRig (deg: (ms: number) => number, pcomp: Record<string, string | number>): { r: Rig, c: Captured } {
  const r = rig(deg)
  r.put({
    'PCOMP1.INP': 'INENC1.VAL',
    'PCOMP1.WIDTH': 10,
    'PCOMP1.STEP': 50,
    'PCOMP1.PULSES': 3,
    ...pcomp,
    'PCAP.TRIG': 'PCOMP1.OUT',
    'PCAP.GATE': 'ONE',
    'PCAP.ENABLE': 'PCOMP1.ACTIVE',
    'TTLOUT1.VAL': 'PCOMP1.OUT'
  })
  r.put({ 'INENC1.VAL.CAPTURE': 'Value', 'PCAP.TS_TRIG.CAPTURE': 'Value' })
  const c = capture(r)
  r.put({ 'PCOMP1.ENABLE': 'ONE' })
  return { r, c }
}

t.test('PCOMP: pulses on the exact tick the encoder reaches each position; capture ends when ACTIVE drops', async t => {
  // 90 deg/s = 2000 counts/s: count c is reached (rounded) when 2000 t >= c - 0.5.
  const { r, c } = tomoRig((ms) => 0.09 * ms, { 'PCOMP1.START': 100 })
  r.run(200)
  t.same(column(c, 'INENC1.VAL.Value'), [100, 150, 200], 'START, START + STEP, ...')
  const ts = column(c, 'PCAP.TS_TRIG.Value')
  ;[100, 150, 200].forEach((count, k) => {
    const ticks = Math.ceil((count - 0.5) / 2000 * 125e6)
    // The motor is asked for its position at clock milliseconds since 1970, which a double holds to about
    // 0.25 µs (31 ticks): the crossing is found to that.
    t.ok(Math.abs((ts[k] as number) - ticks * TICK_S) < 0.5e-6, `TS_TRIG ${ts[k]} s is tick ${ticks}`)
  })
  t.equal(c.ended, 'Ok', 'PCAP.ENABLE = PCOMP1.ACTIVE fell after the last pulse')
  t.equal(r.edges.length, 3, 'TTLOUT1 saw three pulses')
  t.equal(r.value('PCOMP1.PRODUCED'), '3')
  t.equal(r.value('PCOMP1.STATE'), 'WAIT_ENABLE')
  t.equal(r.value('PCOMP1.ACTIVE'), '0')
  t.equal(r.value('PCAP.ACTIVE'), '0')
})

t.test('PCOMP: never twice at one position when the encoder goes back and forth', async t => {
  const { r, c } = tomoRig(path([[0, 0], [50, 105], [60, 95], [70, 105], [80, 95], [200, 300]]), { 'PCOMP1.START': 100, 'PCOMP1.WIDTH': 20, 'PCOMP1.PULSES': 2 })
  r.run(200)
  t.same(column(c, 'INENC1.VAL.Value'), [100, 150], 'one pulse at 100 however often it is crossed')
  t.equal(r.edges.length, 2)
})

t.test('PCOMP: RELATIVE with a guessed direction, moving down', async t => {
  const { r, c } = tomoRig(path([[0, 1000], [500, 0]]), { 'PCOMP1.START': 50, 'PCOMP1.RELATIVE': 'Relative', 'PCOMP1.DIR': 'Either' })
  r.run(300)
  t.same(column(c, 'INENC1.VAL.Value'), [950, 900, 850], 'START and STEP counted down from where it was enabled')
})

t.test('PCOMP: PULSES=0 goes on for ever', async t => {
  // Enabled below START: at START it would first wait to be below it (WAIT_PRE_START).
  const { r, c } = tomoRig((ms) => (2 * ms - 10) / CPD, { 'PCOMP1.START': 0, 'PCOMP1.STEP': 100, 'PCOMP1.PULSES': 0 })
  r.run(510)
  t.same(column(c, 'INENC1.VAL.Value'), [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000])
  t.equal(r.value('PCOMP1.ACTIVE'), '1')
  t.equal(c.ended, undefined)
})

t.test('PCOMP: a jump past STEP stops it with HEALTH', async t => {
  const { r, c } = tomoRig((ms) => ms < 10 ? 0 : 1000 / CPD, { 'PCOMP1.START': 100 })
  r.run(20)
  t.same(c.rows, [])
  t.equal(r.value('PCOMP1.HEALTH'), 'Position jumped by more than STEP')
  t.equal(r.value('PCOMP1.ACTIVE'), '0')
  t.equal(c.ended, 'Ok')
})

t.test('SEQ: repeated lines, phases, outputs, and a position trigger', async t => {
  const r = rig((ms) => 0.09 * ms)
  // Line 1: 3 times, OUTA high for 5 µs then low for 5 µs. Line 2: wait for INENC1 >= 500, OUTB for 10 µs.
  const line1 = [3 | (1 << 20), 0, 5, 5]
  const line2 = [1 | (7 << 16) | (1 << 27), 500, 0, 10]
  const w = r.sim.model.putTable('SEQ1.TABLE', false, true, false)
  w.write(line1.join(' '))
  w.write(line2.join(' '))
  w.close()
  r.put({ 'SEQ1.PRESCALE': 1e-6, 'SEQ1.REPEATS': 1, 'SEQ1.POSA': 'INENC1.VAL', 'TTLOUT1.VAL': 'SEQ1.OUTA', 'TTLOUT2.VAL': 'SEQ1.OUTB' })
  r.put({ 'SEQ1.ENABLE': 'ONE' })
  t.equal(r.value('SEQ1.ACTIVE'), '1')
  r.run(1)
  const a = r.edges.filter((e) => e.ttlout === 1).map((e) => Math.round((e.atMs - r.sim.t0Ms) * 1000))
  t.same(a, [0, 10, 20], 'OUTA rises every 10 µs, three times')
  t.equal(r.value('SEQ1.TABLE_LINE'), '2')
  t.equal(r.value('SEQ1.STATE'), 'WAIT_TRIGGER')
  r.run(299)
  const b = r.edges.filter((e) => e.ttlout === 2)
  t.equal(b.length, 1)
  t.ok(Math.abs((b[0]?.atMs ?? 0) - r.sim.t0Ms - 499.5 / 2) < 1e-3, 'OUTB rose when INENC1 reached 500')
  t.equal(r.value('SEQ1.ACTIVE'), '0', 'the table ran once')
})

t.test('PCAP: Value, Diff, Sum, Min, Max, Mean, GATE_DURATION and timestamps of gated windows', async t => {
  // Encoder at 2000 counts/s; gate high for 5 ms of every 10 ms; a row at each falling gate.
  const r = rig((ms) => 0.09 * ms)
  r.put({
    'CLOCK1.PERIOD': 0.01,
    'CLOCK1.WIDTH': 0.005,
    'CLOCK1.ENABLE': 'PCAP.ACTIVE',
    'PCAP.ENABLE': 'ONE',
    'PCAP.GATE': 'CLOCK1.OUT',
    'PCAP.TRIG': 'CLOCK1.OUT',
    'PCAP.TRIG_EDGE': 'Falling',
    'INENC1.VAL.CAPTURE': 'Value Diff Sum Min Max Mean'
  })
  for (const f of ['TS_START', 'TS_END', 'TS_TRIG', 'GATE_DURATION']) r.put({ [`PCAP.${f}.CAPTURE`]: 'Value' })
  const c = capture(r)
  t.same(columns(c), ['INENC1.VAL.Value', 'INENC1.VAL.Diff', 'INENC1.VAL.Min', 'INENC1.VAL.Max', 'PCAP.GATE_DURATION.Value',
    'INENC1.VAL.Sum', 'PCAP.TS_START.Value', 'PCAP.TS_END.Value', 'PCAP.TS_TRIG.Value', 'INENC1.VAL.Mean'], 'the server\'s order')
  r.run(39)
  t.equal(c.rows.length, 4)
  for (let k = 0; k < 4; k++) {
    const row = (name: string): number => column(c, name)[k] as number
    t.equal(row('INENC1.VAL.Value'), 20 * k + 10, `row ${k} value at the falling gate`)
    t.equal(row('INENC1.VAL.Min'), 20 * k)
    t.equal(row('INENC1.VAL.Max'), 20 * k + 10)
    t.equal(row('INENC1.VAL.Diff'), 10)
    t.ok(Math.abs(row('PCAP.GATE_DURATION.Value') - 0.005) < 1e-12)
    t.ok(Math.abs(row('INENC1.VAL.Mean') - (20 * k + 5)) < 0.6, `mean ${row('INENC1.VAL.Mean')}`)
    t.ok(Math.abs(row('INENC1.VAL.Sum') / 625000 - row('INENC1.VAL.Mean')) < 1e-6, 'Sum = Mean × gated ticks')
    t.ok(Math.abs(row('PCAP.TS_START.Value') - 0.01 * k) < 1e-12)
    t.ok(Math.abs(row('PCAP.TS_END.Value') - (0.01 * k + 0.005)) < 1e-12)
    t.ok(Math.abs(row('PCAP.TS_TRIG.Value') - (0.01 * k + 0.005)) < 1e-12)
  }
  r.sim.disarm()
  t.equal(c.ended, 'Disarmed')
  t.equal(r.value('PCAP.ACTIVE'), '0')
  t.equal(r.value('CLOCK1.OUT'), '0', 'CLOCK1.ENABLE = PCAP.ACTIVE stopped the clock')
})

t.test('PCAP: no gate gives Min and Max 0 and timestamps -1 tick; a falling ENABLE ends with Ok', async t => {
  const r = rig((ms) => 0.09 * ms)
  r.put({ 'CLOCK1.PERIOD': 0.001, 'CLOCK1.ENABLE': 'ONE', 'PCAP.TRIG': 'CLOCK1.OUT', 'PCAP.ENABLE': 'BITS.OUTA', 'BITS.A': 1 })
  r.put({ 'INENC1.VAL.CAPTURE': 'Min Max', 'PCAP.TS_START.CAPTURE': 'Value' })
  const c = capture(r)
  r.run(2.5)
  t.same(c.rows.map((row) => row.slice(0, 2)), [[0, 0], [0, 0]], 'rows at 1 and 2 ms (the edge at 0 came before the arm)')
  t.same(column(c, 'PCAP.TS_START.Value'), [-TICK_S, -TICK_S])
  r.put({ 'BITS.A': 0 })
  t.equal(c.ended, 'Ok')
})

t.test('PCAP: triggers closer than the row has words end the capture with Framing error', async t => {
  const r = rig()
  r.put({ 'CLOCK1.PERIOD.UNITS': 's', 'PCAP.TRIG': 'CLOCK1.OUT', 'PCAP.ENABLE': 'ONE', 'PCAP.TRIG_EDGE': 'Either' })
  r.put({ 'CLOCK1.PERIOD.RAW': 4, 'PCAP.TS_TRIG.CAPTURE': 'Value', 'PCAP.TS_START.CAPTURE': 'Value' })
  const c = capture(r)
  r.put({ 'CLOCK1.ENABLE': 'ONE' })
  r.run(0.001)
  t.equal(c.ended, 'Framing error', 'edges 2 ticks apart, rows of 4 words')
  t.equal(r.value('PCAP.HEALTH'), 'Capture events too close together')
})

t.test('FMC_IN carries an absorption edge in the encoder angle', async t => {
  let deg = 0
  const r = rig(() => deg)
  const mu = (): number => {
    const i0 = Number(r.value('FMC_IN.VAL1'))
    const it = Number(r.value('FMC_IN.VAL2'))
    return Math.log(i0 / it)
  }
  deg = 10
  r.run(1)
  t.ok(Math.abs(Number(r.value('FMC_IN.VAL1')) * ADC_VOLTS_PER_COUNT - ADC_DEFAULTS.i0Volts) < 0.01, 'VAL1 is I0')
  t.ok(Math.abs(mu() - ADC_DEFAULTS.muBelow) < 0.01, `well above the edge angle: μ = ${mu()}`)
  deg = -10
  r.run(1)
  t.ok(Math.abs(mu() - ADC_DEFAULTS.muBelow - ADC_DEFAULTS.muJump) < 0.01, `well below: μ = ${mu()}`)
  deg = ADC_DEFAULTS.edgeDeg
  r.run(1)
  t.ok(Math.abs(mu() - ADC_DEFAULTS.muBelow - ADC_DEFAULTS.muJump * edgeFraction(Math.round(deg * CPD) / CPD, { ...ADC_DEFAULTS })) < 0.01,
    `at the edge: μ = ${mu()}`)
})
