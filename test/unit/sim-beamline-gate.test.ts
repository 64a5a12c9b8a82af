/**
 * The gate width the simulated beamline hands a camera with each TTLOUT edge (gateWidthS, src/sim/beamline.ts): the
 * high time of the CLOCK or PULSE driving the TTLOUT, none for other sources. Runs on the PandA model alone.
 */
import t from 'tap'
import { PandaSimulation, gateWidthS } from '../../src/sim/index.js'

/** A simulation on a clock that never fires (nothing here advances time). */
function model (): PandaSimulation['model'] {
  return new PandaSimulation({ clock: { nowMs: () => 0, setTimer: () => () => {} } }).model
}

t.test('CLOCK: WIDTH, or half the PERIOD when WIDTH is 0', async t => {
  const m = model()
  m.put('TTLOUT2.VAL', 'CLOCK1.OUT')
  m.put('CLOCK1.PERIOD', '0.02')
  m.put('CLOCK1.WIDTH', '0.005')
  t.ok(Math.abs((gateWidthS(m, 2) ?? NaN) - 0.005) < 1e-12, `${String(gateWidthS(m, 2))} s`)
  m.put('CLOCK1.WIDTH', '0')
  t.ok(Math.abs((gateWidthS(m, 2) ?? NaN) - 0.01) < 1e-12, `${String(gateWidthS(m, 2))} s: half the period`)
  t.equal(gateWidthS(m, 1), undefined, 'TTLOUT1 is still ZERO')
})

t.test('PULSE: its WIDTH, none for a delay line (WIDTH 0)', async t => {
  const m = model()
  m.put('TTLOUT3.VAL', 'PULSE2.OUT')
  m.put('PULSE2.WIDTH.UNITS', 'ms')
  m.put('PULSE2.WIDTH', '1.5')
  t.ok(Math.abs((gateWidthS(m, 3) ?? NaN) - 0.0015) < 1e-12, `${String(gateWidthS(m, 3))} s`)
  m.put('PULSE2.WIDTH', '0')
  t.equal(gateWidthS(m, 3), undefined)
})

t.test('PCOMP (a width in encoder counts) and other sources: none, the camera exposes for AcquireTime', async t => {
  const m = model()
  m.put('TTLOUT1.VAL', 'PCOMP1.OUT')
  t.equal(gateWidthS(m, 1), undefined)
  m.put('TTLOUT1.VAL', 'ONE')
  t.equal(gateWidthS(m, 1), undefined)
})
