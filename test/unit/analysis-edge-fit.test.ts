import t, { type Test } from 'tap'
import { fitEdge } from '../../src/analysis/index.js'
import { ErrorCode, isFlyScanError } from '../../src/errors.js'
import { adcSignals } from '../../src/sim/panda/adc.js'
import { ADC_DEFAULTS, type AdcOptions } from '../../src/sim/panda/index.js'

interface Scan {
  /** The encoder's resolution: TST's stage has 8000 counts per revolution (22.2 per degree). */
  readonly countsPerDeg: number
  readonly fromDeg: number
  readonly toDeg: number
  readonly n: number
  readonly adc?: AdcOptions
}

/**
 * What an XAS fly scan through the simulated PandA records: the encoder moves at constant speed from `fromDeg` to
 * `toDeg` (rounded to whole counts, as INENC1.VAL is), and each row has VAL1 (I0) and VAL2 (It) from the
 * simulator's own ADC function, noise included. TST's plans pass the angle through as the "energy".
 */
function simulatedScan (s: Scan): { energies: number[], mu: number[] } {
  const ticks = 1000
  const encoder = {
    continuous: true,
    valueAt: (tick: number) => Math.round((s.fromDeg + (s.toDeg - s.fromDeg) * tick / (ticks * (s.n - 1))) * s.countsPerDeg)
  }
  const [i0, it] = adcSignals(encoder, s.countsPerDeg, s.adc ?? {})
  if (i0 === undefined || it === undefined) throw new Error('the simulator has no VAL1/VAL2')
  const energies: number[] = []
  const mu: number[] = []
  for (let i = 0; i < s.n; i++) {
    energies.push(encoder.valueAt(i * ticks) / s.countsPerDeg)
    mu.push(Math.log(i0.valueAt(i * ticks) / it.valueAt(i * ticks)))
  }
  return { energies, mu }
}

t.test('the simulator\'s edge at TST\'s encoder resolution (whole counts, repeated angles) is found', async t => {
  const { energies, mu } = simulatedScan({ countsPerDeg: 8000 / 360, fromDeg: -3, toDeg: -1, n: 2000 })
  const fit = fitEdge(energies, mu)
  // Tolerance: a tenth of the edge width (0.005°); the encoder's own step is 0.045°.
  t.ok(Math.abs(fit.e0 - ADC_DEFAULTS.edgeDeg) < 0.005, `e0 ${fit.e0} within 0.005° of ${ADC_DEFAULTS.edgeDeg}`)
  t.ok(Math.abs(fit.width - ADC_DEFAULTS.widthDeg) < 0.005, `width ${fit.width} within 0.005° of ${ADC_DEFAULTS.widthDeg}`)
  // μ falls as the angle rises: the step is negative, its size is the simulator's muJump.
  t.ok(Math.abs(fit.stepHeight + ADC_DEFAULTS.muJump) < 0.01, `stepHeight ${fit.stepHeight} ≈ −${ADC_DEFAULTS.muJump}`)
  t.ok(Math.abs(fit.baseline - (ADC_DEFAULTS.muBelow + ADC_DEFAULTS.muJump)) < 0.01, `baseline ${fit.baseline}`)
  t.equal(fit.points, 2000)
  t.ok(fit.distinctEnergies < 50, `${fit.distinctEnergies} distinct angles among 2000 rows`)
  t.ok(fit.residualRms < 0.005, `residual rms ${fit.residualRms} is the simulator's noise`)
})

t.test('a known offset of the edge is recovered, scanning either way, with 10× and 25× the noise', async t => {
  const edgeDeg = -1.863
  for (const [fromDeg, toDeg, noise, n, tolerance] of [
    [-3, -1, ADC_DEFAULTS.noise, 500, 0.001],
    [-1, -3, ADC_DEFAULTS.noise, 500, 0.001],
    [-3, -1, 10 * ADC_DEFAULTS.noise, 500, 0.005],
    [-2.3, -1.5, 25 * ADC_DEFAULTS.noise, 100, 0.01]
  ] as const) {
    const { energies, mu } = simulatedScan({ countsPerDeg: 100_000, fromDeg, toDeg, n, adc: { edgeDeg, noise } })
    const fit = fitEdge(energies, mu)
    t.ok(Math.abs(fit.e0 - edgeDeg) < tolerance,
      `${fromDeg}→${toDeg}°, noise ${noise}, ${n} points: e0 ${fit.e0.toFixed(5)} within ${tolerance}° of ${edgeDeg} (offset ${(fit.e0 - ADC_DEFAULTS.edgeDeg).toFixed(4)}°)`)
    t.ok(Math.abs(fit.width - ADC_DEFAULTS.widthDeg) < 0.01, `width ${fit.width}`)
  }
})

t.test('an edge in eV (Cu K, 8979 eV + a 3.2 eV calibration offset), rising with energy', async t => {
  const e0 = 8979 + 3.2
  const width = 1.5
  const energies: number[] = []
  const mu: number[] = []
  let seed = 12345
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed / 2 ** 31 - 0.5
  }
  for (let i = 0; i < 400; i++) {
    const e = 8900 + i * 0.5
    energies.push(e)
    mu.push(0.2 + 1.4 * (0.5 + Math.atan((e - e0) / width) / Math.PI) + 0.02 * rand())
  }
  const fit = fitEdge(energies, mu)
  t.ok(Math.abs(fit.e0 - e0) < 0.1, `e0 ${fit.e0} within 0.1 eV of ${e0}`)
  t.ok(Math.abs(fit.width - width) < 0.2, `width ${fit.width}`)
  t.ok(Math.abs(fit.stepHeight - 1.4) < 0.02, `stepHeight ${fit.stepHeight}`)
  t.ok(Math.abs(fit.e0Derivative - e0) < 2, `the derivative's estimate ${fit.e0Derivative} is near`)
})

function rejects (t: Test, fn: () => unknown, reason: string, message: RegExp): void {
  try {
    fn()
    t.fail(`${reason}: no error thrown (expected ${message.source})`)
  } catch (err) {
    t.ok(isFlyScanError(err, ErrorCode.BAD_INPUT), `${reason}: a FLY_ERR_BAD_INPUT`)
    t.equal((err as { details?: { reason?: unknown } }).details?.reason, reason)
    t.match((err as Error).message, message)
  }
}

t.test('clear errors: too few points, mismatched lengths, not finite, not monotonic, no edge', async t => {
  const step = (n: number): number[] => Array.from({ length: n }, (_, i) => (i < n / 2 ? 0 : 1))
  const line = (n: number): number[] => Array.from({ length: n }, (_, i) => i)
  rejects(t, () => fitEdge(line(5), step(5)), 'too-few-points', /edge fit: 5 points, fewer than the 8 needed/)
  rejects(t, () => fitEdge([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4], step(12)), 'too-few-points', /4 distinct energies among 12 points, fewer than the 8 needed/)
  rejects(t, () => fitEdge(line(10), step(9)), 'length-mismatch', /10 energies but 9 μ values/)
  const withNaN = step(10)
  withNaN[4] = Number.NaN
  rejects(t, () => fitEdge(line(10), withNaN), 'not-finite', /sample 4 is not finite \(energy 4, μ NaN\)/)
  rejects(t, () => fitEdge([1, 2, 3, 2, 5, 6, 7, 8, 9, 10], step(10)), 'not-monotonic', /energies are not monotonic: 2, 3, 2 at index 2\.\.3/)
  rejects(t, () => fitEdge(line(20), new Array<number>(20).fill(1.5)), 'no-edge', /no edge found: μ changes by 0\.00/)
  const noisy = line(200).map((i) => 0.01 * Math.sin(i * 12.9898))
  rejects(t, () => fitEdge(line(200), noisy), 'no-edge', /not more than 5 × its noise/)
  // A straight ramp has a "step" between its ends but no edge: the arctan would have to be wider than the data.
  rejects(t, () => fitEdge(line(100), line(100).map((i) => 0.01 * i)), 'no-edge', /no edge found: the fit put it at/)
})

t.test('options: a lower minPoints and minSnr accept a short scan', async t => {
  const energies = [0, 1, 2, 3, 4, 5]
  const mu = energies.map((e) => 0.5 + Math.atan((e - 2.5) / 0.3) / Math.PI)
  rejects(t, () => fitEdge(energies, mu), 'too-few-points', /6 points/)
  // With 6 points the edge itself dominates the second differences that estimate the noise (σ ≈ 0.19 here).
  rejects(t, () => fitEdge(energies, mu, { minPoints: 6 }), 'no-edge', /not more than 5 × its noise 0\.19/)
  const fit = fitEdge(energies, mu, { minPoints: 6, minSnr: 2 })
  t.ok(Math.abs(fit.e0 - 2.5) < 1e-6, `e0 ${fit.e0}`)
  t.ok(Math.abs(fit.width - 0.3) < 1e-6, `width ${fit.width}`)
})
