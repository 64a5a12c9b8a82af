/**
 * Fits an absorption edge in (energy, μ) samples, μ = ln(I0/It). Pure: plain arrays in, a small result out.
 *
 * 1. Checks: as many μ as energies, every value finite, energies monotonic (either way; equal neighbours are
 *    allowed, since an encoder repeats its value between counts), at least `minPoints` distinct energies.
 * 2. Estimate: μ is averaged per distinct energy, smoothed with a moving average, and differentiated; e0 starts at
 *    the largest |dμ/dE|, the width at the half width at half maximum of that peak. The step must exceed `minSnr`
 *    times the noise (a robust estimate from second differences), or there is no edge.
 * 3. Refine: a least-squares fit (Levenberg-Marquardt) of the arctan step the simulated PandA draws
 *    (src/sim/panda/adc.ts), μ(E) = baseline + stepHeight · (1/2 + atan((E − e0) / width) / π), over every sample.
 *    `stepHeight` is signed: positive when μ rises with E (an edge in energy), negative when it falls (TST's XAS
 *    plans pass the monochromator angle as the "energy", and μ falls as the angle rises).
 *
 * The fit works in scaled coordinates (energies centred and divided by their span) so that eV and degrees behave
 * alike. docs/analysis.md has the model and the tolerances measured on the simulator's own function.
 */
import { defaults } from '../../config/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'

export interface EdgeFitOptions {
  /** Fewest distinct energies (default defaults.analysis.edgeMinPoints). */
  readonly minPoints?: number
  /** The step must exceed this many noise sigmas (default defaults.analysis.edgeMinSnr). */
  readonly minSnr?: number
  /** Moving-average window as a fraction of the distinct energies (default defaults.analysis.edgeSmoothFraction). */
  readonly smoothFraction?: number
  /** Most Levenberg-Marquardt iterations (default defaults.analysis.edgeMaxIterations). */
  readonly maxIterations?: number
}

export interface EdgeFit {
  /** The edge position (the step's midpoint), in the energies' unit. */
  readonly e0: number
  /** The arctan half width (HWHM of dμ/dE), in the energies' unit; > 0. */
  readonly width: number
  /** μ far above the edge minus μ far below it (signed). */
  readonly stepHeight: number
  /** μ far below the edge (the lower-energy side). */
  readonly baseline: number
  /** Root-mean-square of μ − model over every sample. */
  readonly residualRms: number
  /** Samples used (all of them). */
  readonly points: number
  /** Distinct energies among them. */
  readonly distinctEnergies: number
  /** The first estimate of e0: the largest |dμ/dE| of the smoothed data. */
  readonly e0Derivative: number
  /** Levenberg-Marquardt iterations taken. */
  readonly iterations: number
}

function fail (reason: string, message: string, details: Record<string, string | number | boolean | null> = {}): never {
  throw new FlyScanError(ErrorCode.BAD_INPUT, `edge fit: ${message}`, { details: { reason, ...details } })
}

type Samples = ArrayLike<number>

/** Returns +1 for non-decreasing energies, −1 for non-increasing ones; throws on anything else. */
function direction (e: Samples): 1 | -1 {
  let dir = 0
  for (let i = 1; i < e.length; i++) {
    const d = (e[i] as number) - (e[i - 1] as number)
    if (d === 0) continue
    const s = d > 0 ? 1 : -1
    if (dir === 0) dir = s
    else if (s !== dir) {
      fail('not-monotonic',
        `energies are not monotonic: ${e[i - 2] ?? ''}${i >= 2 ? ', ' : ''}${e[i - 1]}, ${e[i]} at index ${i - 1}..${i} turn back against the ${dir > 0 ? 'rising' : 'falling'} order`,
        { index: i, previous: e[i - 1] as number, value: e[i] as number })
    }
  }
  return dir < 0 ? -1 : 1
}

function check (energies: Samples, mu: Samples, minPoints: number): void {
  if (energies.length !== mu.length) {
    fail('length-mismatch', `${energies.length} energies but ${mu.length} μ values`, { energies: energies.length, mu: mu.length })
  }
  for (let i = 0; i < energies.length; i++) {
    const e = energies[i] as number
    const m = mu[i] as number
    if (!Number.isFinite(e) || !Number.isFinite(m)) {
      fail('not-finite', `sample ${i} is not finite (energy ${e}, μ ${m}); drop it first (μ = ln(I0/It) needs I0, It > 0)`, { index: i })
    }
  }
  if (energies.length < minPoints) {
    fail('too-few-points', `${energies.length} points, fewer than the ${minPoints} needed`, { points: energies.length, minPoints })
  }
}

/** Mean μ per distinct energy, energies ascending. */
function distinct (energies: Samples, mu: Samples, dir: 1 | -1): { e: Float64Array, m: Float64Array } {
  const n = energies.length
  const e = new Float64Array(n)
  const m = new Float64Array(n)
  let k = -1
  let count = 0
  for (let j = 0; j < n; j++) {
    const i = dir > 0 ? j : n - 1 - j
    const ei = energies[i] as number
    if (k >= 0 && e[k] === ei) {
      count++
      m[k] = (m[k] as number) + ((mu[i] as number) - (m[k] as number)) / count
    } else {
      k++
      count = 1
      e[k] = ei
      m[k] = mu[i] as number
    }
  }
  return { e: e.subarray(0, k + 1), m: m.subarray(0, k + 1) }
}

function movingAverage (m: Float64Array, window: number): Float64Array {
  const n = m.length
  const half = window >> 1
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const a = Math.max(0, i - half)
    const b = Math.min(n - 1, i + half)
    let s = 0
    for (let j = a; j <= b; j++) s += m[j] as number
    out[i] = s / (b - a + 1)
  }
  return out
}

function median (values: Float64Array): number {
  const s = Float64Array.from(values).sort()
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** Noise sigma of μ from the median absolute second difference (robust against the edge and linear trends). */
function noiseSigma (m: Float64Array): number {
  if (m.length < 3) return 0
  const d2 = new Float64Array(m.length - 2)
  for (let i = 1; i < m.length - 1; i++) d2[i - 1] = Math.abs((m[i - 1] as number) - 2 * (m[i] as number) + (m[i + 1] as number))
  // For white noise σ, a second difference has σ·√6; the median of |N(0, s)| is 0.6745·s.
  return median(d2) / (0.6745 * Math.sqrt(6))
}

interface Estimate {
  readonly e0: number
  readonly width: number
  readonly step: number
  readonly baseline: number
}

function estimate (e: Float64Array, m: Float64Array, smoothFraction: number, minSnr: number): Estimate {
  const n = e.length
  const window = Math.max(3, 2 * Math.round(smoothFraction * n / 2) + 1)
  const s = movingAverage(m, window)
  const d = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const a = Math.max(0, i - 1)
    const b = Math.min(n - 1, i + 1)
    d[i] = ((s[b] as number) - (s[a] as number)) / ((e[b] as number) - (e[a] as number))
  }
  let peak = 0
  for (let i = 1; i < n; i++) if (Math.abs(d[i] as number) > Math.abs(d[peak] as number)) peak = i
  const dPeak = d[peak] as number
  // Half width at half maximum of the derivative peak (an arctan step's derivative is a Lorentzian of HWHM = width).
  let lo = peak
  while (lo > 0 && (d[lo] as number) * Math.sign(dPeak) > Math.abs(dPeak) / 2) lo--
  let hi = peak
  while (hi < n - 1 && (d[hi] as number) * Math.sign(dPeak) > Math.abs(dPeak) / 2) hi++
  const span = (e[n - 1] as number) - (e[0] as number)
  const minWidth = span / (n - 1) / 2
  const width = Math.max(minWidth, ((e[hi] as number) - (e[lo] as number)) / 2)
  // The step, from the ends: the mean of the first and the last tenth (at least 2 points each).
  const tail = Math.max(2, Math.floor(n / 10))
  let below = 0
  let above = 0
  for (let i = 0; i < tail; i++) {
    below += m[i] as number
    above += m[n - 1 - i] as number
  }
  below /= tail
  above /= tail
  const step = above - below
  const sigma = noiseSigma(m)
  const scale = Math.max(Math.abs(below), Math.abs(above), 1e-300)
  if (!(Math.abs(step) > minSnr * sigma) || Math.abs(step) <= 1e-12 * scale) {
    fail('no-edge', `no edge found: μ changes by ${step.toPrecision(3)} from the low to the high end, ` +
      `not more than ${minSnr} × its noise ${sigma.toPrecision(3)} (energies ${e[0]}..${e[n - 1]})`,
    { step, noise: sigma })
  }
  return { e0: e[peak] as number, width, step, baseline: below }
}

/** Solves the 4×4 system a·x = b in place (Gaussian elimination with partial pivoting); false if singular. */
function solve4 (a: Float64Array, b: Float64Array): boolean {
  const n = 4
  for (let c = 0; c < n; c++) {
    let p = c
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r * n + c] as number) > Math.abs(a[p * n + c] as number)) p = r
    const pivot = a[p * n + c] as number
    if (!(Math.abs(pivot) > 1e-300)) return false
    if (p !== c) {
      for (let k = 0; k < n; k++) {
        const t = a[c * n + k] as number
        a[c * n + k] = a[p * n + k] as number
        a[p * n + k] = t
      }
      const t = b[c] as number
      b[c] = b[p] as number
      b[p] = t
    }
    for (let r = c + 1; r < n; r++) {
      const f = (a[r * n + c] as number) / pivot
      if (f === 0) continue
      for (let k = c; k < n; k++) a[r * n + k] = (a[r * n + k] as number) - f * (a[c * n + k] as number)
      b[r] = (b[r] as number) - f * (b[c] as number)
    }
  }
  for (let r = n - 1; r >= 0; r--) {
    let s = b[r] as number
    for (let k = r + 1; k < n; k++) s -= (a[r * n + k] as number) * (b[k] as number)
    b[r] = s / (a[r * n + r] as number)
  }
  return true
}

/** Parameters in scaled coordinates: [baseline, step, x0, ln(width)]. */
function chi2 (x: Float64Array, y: Samples, p: Float64Array): number {
  const [a, b, x0, lw] = p as unknown as [number, number, number, number]
  const w = Math.exp(lw)
  let s = 0
  for (let i = 0; i < x.length; i++) {
    const r = (y[i] as number) - (a + b * (0.5 + Math.atan(((x[i] as number) - x0) / w) / Math.PI))
    s += r * r
  }
  return s
}

function levenbergMarquardt (x: Float64Array, y: Samples, p: Float64Array, maxIterations: number): number {
  const jtj = new Float64Array(16)
  const jtr = new Float64Array(4)
  const a = new Float64Array(16)
  const delta = new Float64Array(4)
  const trial = new Float64Array(4)
  const g = new Float64Array(4)
  let lambda = 1e-3
  let current = chi2(x, y, p)
  let iterations = 0
  while (iterations < maxIterations) {
    iterations++
    jtj.fill(0)
    jtr.fill(0)
    const [pa, pb, x0, lw] = p as unknown as [number, number, number, number]
    const w = Math.exp(lw)
    for (let i = 0; i < x.length; i++) {
      const u = ((x[i] as number) - x0) / w
      const s = 0.5 + Math.atan(u) / Math.PI
      const l = pb / (Math.PI * (1 + u * u))
      g[0] = 1
      g[1] = s
      g[2] = -l / w // ∂/∂x0
      g[3] = -l * u // ∂/∂ln(w) = w · ∂/∂w = w · (−l·u/w)
      const r = (y[i] as number) - (pa + pb * s)
      for (let j = 0; j < 4; j++) {
        const gj = g[j] as number
        jtr[j] = (jtr[j] as number) + gj * r
        for (let k = j; k < 4; k++) jtj[j * 4 + k] = (jtj[j * 4 + k] as number) + gj * (g[k] as number)
      }
    }
    for (let j = 0; j < 4; j++) for (let k = 0; k < j; k++) jtj[j * 4 + k] = jtj[k * 4 + j] as number
    let improved = false
    while (lambda < 1e12) {
      a.set(jtj)
      for (let j = 0; j < 4; j++) a[j * 5] = (jtj[j * 5] as number) * (1 + lambda)
      delta.set(jtr)
      if (solve4(a, delta)) {
        for (let j = 0; j < 4; j++) trial[j] = (p[j] as number) + (delta[j] as number)
        const next = chi2(x, y, trial)
        if (next <= current) {
          const gain = current - next
          p.set(trial)
          current = next
          lambda = Math.max(lambda / 10, 1e-12)
          improved = true
          if (gain <= 1e-12 * current + 1e-300) return iterations
          break
        }
      }
      lambda *= 10
    }
    if (!improved) return iterations
  }
  return iterations
}

/** Fits an arctan absorption edge to (energies, mu); see the file comment. Throws FLY_ERR_BAD_INPUT (details.reason). */
export function fitEdge (energies: Samples, mu: Samples, options: EdgeFitOptions = {}): EdgeFit {
  const minPoints = options.minPoints ?? defaults.analysis.edgeMinPoints
  const minSnr = options.minSnr ?? defaults.analysis.edgeMinSnr
  const smoothFraction = options.smoothFraction ?? defaults.analysis.edgeSmoothFraction
  const maxIterations = options.maxIterations ?? defaults.analysis.edgeMaxIterations
  check(energies, mu, minPoints)
  const dir = direction(energies)
  const { e, m } = distinct(energies, mu, dir)
  if (e.length < minPoints) {
    fail('too-few-points', `${e.length} distinct energies among ${energies.length} points, fewer than the ${minPoints} needed`,
      { points: energies.length, distinct: e.length, minPoints })
  }
  const first = estimate(e, m, smoothFraction, minSnr)
  const lowE = e[0] as number
  const highE = e[e.length - 1] as number
  const centre = (lowE + highE) / 2
  const span = highE - lowE
  const n = energies.length
  const x = new Float64Array(n)
  for (let i = 0; i < n; i++) x[i] = ((energies[i] as number) - centre) / span
  const p = Float64Array.of(first.baseline, first.step, (first.e0 - centre) / span, Math.log(first.width / span))
  const iterations = levenbergMarquardt(x, mu, p, maxIterations)
  const [baseline, stepHeight, x0, lw] = p as unknown as [number, number, number, number]
  const e0 = centre + x0 * span
  const width = Math.exp(lw) * span
  if (!Number.isFinite(e0) || !Number.isFinite(width) || e0 < lowE || e0 > highE || width > span) {
    fail('no-edge', `no edge found: the fit put it at ${e0.toPrecision(6)} with width ${width.toPrecision(3)}, ` +
      `outside the energies ${lowE}..${highE} or wider than them`, { e0, width })
  }
  return {
    e0,
    width,
    stepHeight,
    baseline,
    residualRms: Math.sqrt(chi2(x, mu, p) / n),
    points: n,
    distinctEnergies: e.length,
    e0Derivative: first.e0,
    iterations
  }
}
