/**
 * The synthetic ADC inputs (FMC_IN.VAL1..8): an X-ray absorption edge as a function of the encoder angle, so an XAS
 * fly scan through the simulated PandA shows one. docs/sim-panda.md describes the model.
 *
 * The angle θ (degrees) is INENC1.VAL divided by the counts per degree. Energy rises as the monochromator angle
 * falls, so the absorption μ(θ) = muBelow + muJump · s(θ) steps up as θ goes below `edgeDeg`, with
 * s(θ) = 1/2 + atan((edgeDeg − θ) / widthDeg) / π. The channels are:
 *
 *   VAL1  I0, the incident intensity:          i0Volts · (1 + noise)
 *   VAL2  It, the transmitted intensity:       i0Volts · exp(−μ(θ)) · (1 + noise)
 *   VAL3  If, fluorescence:                    i0Volts · (0.02 + 0.3 · s(θ)) · (1 + noise)
 *   VAL4..8  unconnected inputs:               offsetVolts · noise
 *
 * so ln(VAL1 / VAL2) is μ(θ) plus noise. The noise is uniform in [−noise, +noise], a deterministic function of the
 * channel and of the time in steps of `noiseMicros` (the same run gives the same values). Volts become counts at
 * 4.65661287e-9 V per count (PCAP scales them back with the pos_out's SCALE).
 */
import { ADC_VOLTS_PER_COUNT, TICKS_PER_MS } from './definitions.js'
import type { PosSignal } from './timeline.js'

export interface AdcOptions {
  /** Encoder angle of the edge's midpoint, degrees (default −2). */
  readonly edgeDeg?: number
  /** Width of the arctan step, degrees (default 0.05). */
  readonly widthDeg?: number
  /** Incident intensity, volts (default 2). */
  readonly i0Volts?: number
  /** Absorption (μ·thickness) below the edge (default 0.3) and its jump across it (default 1). */
  readonly muBelow?: number
  readonly muJump?: number
  /** Relative noise amplitude (default 0.002). */
  readonly noise?: number
  /** The noise is constant for this long, µs (default 10). */
  readonly noiseMicros?: number
  /** Volts of the noise on the unconnected channels VAL4..8 (default 0.001). */
  readonly offsetVolts?: number
}

export const ADC_DEFAULTS = Object.freeze({
  edgeDeg: -2,
  widthDeg: 0.05,
  i0Volts: 2,
  muBelow: 0.3,
  muJump: 1,
  noise: 0.002,
  noiseMicros: 10,
  offsetVolts: 0.001
})

/** Uniform in [−1, 1], a hash of (channel, step). */
function noiseAt (channel: number, step: number): number {
  let h = Math.imul(step ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(channel + 1, 0xc2b2ae35)
  h ^= h >>> 16
  h = Math.imul(h, 0x7feb352d)
  h ^= h >>> 15
  h = Math.imul(h, 0x846ca68b)
  h ^= h >>> 16
  return (h >>> 0) / 0x7fffffff - 1
}

function toCounts (volts: number): number {
  const c = Math.round(volts / ADC_VOLTS_PER_COUNT)
  return Math.max(-0x80000000, Math.min(0x7fffffff, c))
}

/** The edge fraction s(θ): 0 well above `edgeDeg`, 1 well below. */
export function edgeFraction (thetaDeg: number, o: Required<AdcOptions>): number {
  return 0.5 + Math.atan((o.edgeDeg - thetaDeg) / o.widthDeg) / Math.PI
}

/** The eight ADC channels as position signals, driven by the encoder (counts) and the time. */
export function adcSignals (encoder: PosSignal, countsPerDegree: number, options: AdcOptions = {}): PosSignal[] {
  const o: Required<AdcOptions> = { ...ADC_DEFAULTS, ...options }
  const noiseTicks = Math.max(1, Math.round(o.noiseMicros * TICKS_PER_MS / 1000))
  const sampleTicks = noiseTicks
  const theta = (t: number): number => encoder.valueAt(t) / countsPerDegree
  const n = (ch: number, t: number): number => o.noise * noiseAt(ch, Math.floor(t / noiseTicks))
  const channels: Array<(t: number) => number> = [
    (t) => o.i0Volts * (1 + n(0, t)),
    (t) => o.i0Volts * Math.exp(-(o.muBelow + o.muJump * edgeFraction(theta(t), o))) * (1 + n(1, t)),
    (t) => o.i0Volts * (0.02 + 0.3 * edgeFraction(theta(t), o)) * (1 + n(2, t))
  ]
  for (let ch = 3; ch < 8; ch++) channels.push((t) => o.offsetVolts * noiseAt(ch, Math.floor(t / noiseTicks)))
  return channels.map((volts) => ({ continuous: true, sampleTicks, valueAt: (t: number) => toCounts(volts(t)) }))
}
