/**
 * The one simulated timeline every block of the simulated PandA runs on, in FPGA ticks (8 ns, 125 MHz).
 *
 * Nothing steps tick by tick. Bits are piecewise constant: they change only at events, and each block says when its
 * next event is (a clock edge, the end of a sequencer phase, a queued pulse). Positions derived from motion (the
 * encoder, CALC of it, the ADC channels) change continuously: a block waiting for a position (PCOMP, SEQ position
 * triggers) asks for the first tick at which its condition holds, found per motion slice (1 ms by default) by
 * checking the slice's end and bisecting inside it, so an edge lands on the exact tick the encoder reaches the
 * position. PCAP accumulates positions between events from the same signals (exact sums for positions that change
 * only at events; sampled for motion-derived ones, see `stats`).
 *
 * Within one tick, blocks are stepped in order, repeatedly, until no bit changes: a change propagates through any
 * number of blocks in the same tick (the FPGA takes one tick per block; the simulator takes none).
 */

/** A position on the position bus, as a function of time. */
export interface PosSignal {
  /** The value (an int32) at tick `t`. */
  valueAt: (t: number) => number
  /** True if the value can change between events (it follows the motion), false if it changes only at events. */
  readonly continuous: boolean
  /** For continuous signals with noise: the ticks over which it is roughly constant (PCAP samples at least this often). */
  readonly sampleTicks?: number
}

/** A block of the simulation. */
export interface SimBlock {
  /** Reads inputs at tick `t`, handles its edges and due events, sets outputs. True if any bit output changed. */
  step: (t: number) => boolean
  /** The first tick after `t` (and at most `horizon`, or Infinity) at which the block must be stepped. */
  nextEvent: (t: number, horizon: number) => number
}

/** Statistics of a position over ticks [a, b). */
export interface Stats {
  sum: number
  min: number
  max: number
}

/** A position that changes only at events: its value is whatever was last set. */
export class StepSignal implements PosSignal {
  readonly continuous = false
  constructor (public value = 0) {}
  valueAt (): number {
    return this.value
  }
}

/** The constant 0 of the pos mux ZERO. */
export const ZERO_SIGNAL: PosSignal = { continuous: false, valueAt: () => 0 }

export interface TimelineOptions {
  /** Length of a motion slice in ticks: crossings are searched slice by slice (default 1 ms). */
  readonly sliceTicks?: number
  /** Most passes through the blocks within one tick before giving up on settling (a feedback loop). */
  readonly maxPasses?: number
}

export class Timeline {
  /** The current tick: everything before it has happened. */
  tick = 0
  /** Bit bus: 128 entries, then the constants ZERO (128) and ONE (129). */
  readonly bits = new Uint8Array(130)
  /** How many times each bit has changed. */
  readonly bitChanges = new Uint32Array(128)
  /** Position bus: 32 entries, then ZERO (32). */
  readonly positions: PosSignal[] = Array.from({ length: 33 }, () => ZERO_SIGNAL)
  readonly blocks: SimBlock[] = []
  readonly sliceTicks: number
  readonly maxPasses: number
  /** Runs before the blocks at every event tick (PCAP accumulating up to it). */
  beforeEvent: (t: number) => void = () => {}
  /** Events processed (for tests and the stats). */
  events = 0

  constructor (options: TimelineOptions = {}) {
    this.bits[129] = 1
    this.sliceTicks = options.sliceTicks ?? 125_000
    this.maxPasses = options.maxPasses ?? 64
  }

  bit (index: number): boolean {
    return this.bits[index] === 1
  }

  /** Sets a bit bus entry; true if it changed. */
  setBit (index: number, value: boolean): boolean {
    const v = value ? 1 : 0
    if (this.bits[index] === v) return false
    this.bits[index] = v
    this.bitChanges[index] = (this.bitChanges[index] as number) + 1
    return true
  }

  /** 32 bits of the bus (PCAP.BITS0..3). */
  bitWord (group: number): number {
    let w = 0
    for (let i = 0; i < 32; i++) if (this.bits[32 * group + i] === 1) w |= 1 << i
    return w >>> 0
  }

  position (index: number): PosSignal {
    return this.positions[index] ?? ZERO_SIGNAL
  }

  /**
   * Runs every event up to and including `target`, then stands at `target`. Between events nothing changes but
   * the motion-derived positions.
   */
  advanceTo (target: number): void {
    while (this.tick < target) {
      let next = Infinity
      for (const b of this.blocks) {
        const e = b.nextEvent(this.tick, target)
        if (e < next) next = e
      }
      if (next > target) {
        this.beforeEvent(target)
        this.tick = target
        return
      }
      const t = Math.max(next, this.tick + 1)
      this.beforeEvent(t)
      this.tick = t
      this.settle(t)
    }
  }

  /** Steps the blocks at tick `t` until no bit changes (or maxPasses: a loop that oscillates). */
  settle (t: number): void {
    this.events++
    for (let pass = 0; pass < this.maxPasses; pass++) {
      let changed = false
      for (const b of this.blocks) if (b.step(t)) changed = true
      if (!changed) return
    }
  }

  /**
   * The first tick in [from, to] at which `pred(value)` holds, or Infinity. Positions that change only at events
   * are checked at `from` alone (a block sees their changes when it is stepped). For motion-derived ones each
   * slice's end is checked and the first tick found by bisection: exact while the motion is monotonic within a
   * slice.
   */
  firstTick (signal: PosSignal, from: number, to: number, pred: (v: number) => boolean): number {
    if (from > to) return Infinity
    if (pred(signal.valueAt(from))) return from
    if (!signal.continuous) return Infinity
    const s = this.sliceTicks
    let a = from
    while (a < to) {
      const b = Math.min(to, (Math.floor(a / s) + 1) * s)
      if (pred(signal.valueAt(b))) {
        let lo = a
        let hi = b
        while (hi - lo > 1) {
          const mid = Math.floor((lo + hi) / 2)
          if (pred(signal.valueAt(mid))) hi = mid
          else lo = mid
        }
        return hi
      }
      a = b
    }
    return Infinity
  }

  /**
   * Sum, min and max of a position over ticks [a, b). Exact for positions that change only at events (the value
   * is constant in between). For motion-derived ones the values at `a`, at every slice boundary and at `b - 1`
   * (and, for noisy signals, at least every `sampleTicks`; at most ~512 points) are joined by straight lines:
   * exact for constant-speed motion, an approximation otherwise.
   */
  stats (signal: PosSignal, a: number, b: number): Stats {
    const n = b - a
    const v0 = signal.valueAt(a)
    if (!signal.continuous || n === 1) return { sum: v0 * n, min: v0, max: v0 }
    const last = b - 1
    let step = signal.sampleTicks === undefined ? this.sliceTicks : Math.min(this.sliceTicks, signal.sampleTicks)
    step = Math.max(step, Math.ceil(n / 512))
    let sum = 0
    let min = v0
    let max = v0
    let pt = a
    let pv = v0
    let t = (Math.floor(a / step) + 1) * step
    for (;;) {
      const x = t >= last ? last : t
      const v = signal.valueAt(x)
      sum += (pv + v) / 2 * (x - pt)
      if (v < min) min = v
      if (v > max) max = v
      pt = x
      pv = v
      if (x === last) break
      t += step
    }
    // Trapezoid over [a, b-1] plus half of each end: the sum over the n ticks for a straight line.
    sum += (v0 + pv) / 2
    return { sum, min, max }
  }
}
