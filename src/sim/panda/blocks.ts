/**
 * Behaviour of the simulated blocks, following the FPGA's block simulations and docs (PandABlocks-FPGA
 * modules/<block>/<block>_sim.py and <block>_doc.md at 916fb9a6): CLOCK, PULSE, COUNTER, CALC, BITS, TTLIN,
 * TTLOUT, INENC, FMC_IN, PCOMP and SEQ. PCAP is in pcap.ts. Each block reads its params and muxes from the model
 * (model.ts) and its inputs from the timeline's buses (timeline.ts), and sets its outputs there.
 */
import { adcSignals, type AdcOptions } from './adc.js'
import { SEQ_MAX_ROWS, TICKS_PER_MS } from './definitions.js'
import type { FieldState, Model } from './model.js'
import { StepSignal, type PosSignal, type SimBlock, type Timeline } from './timeline.js'

/** A motor (or anything with a position over time) the encoder follows. */
export interface MotorLike {
  /** Position in motor units (degrees for the rotation stage) at `ms` on the simulation's clock. */
  positionAt: (ms: number) => number
}

export interface BlockContext {
  readonly tl: Timeline
  readonly model: Model
  /** The clock's milliseconds at tick `t`. */
  readonly msAt: (t: number) => number
}

/** Common plumbing: fields of this instance, inputs through its muxes, outputs onto the buses. */
export abstract class Logic implements SimBlock {
  readonly #fields = new Map<string, FieldState>()

  constructor (readonly ctx: BlockContext, readonly block: string, readonly number: number) {}

  fs (name: string): FieldState {
    let f = this.#fields.get(name)
    if (f === undefined) {
      f = this.ctx.model.field(this.block, name, this.number)
      this.#fields.set(name, f)
    }
    return f
  }

  bitIn (name: string): boolean {
    return this.ctx.tl.bit(this.fs(name).value)
  }

  posIn (name: string): PosSignal {
    return this.ctx.tl.position(this.fs(name).value)
  }

  /** Raw value of a param (unsigned). */
  param (name: string): number {
    return this.fs(name).value
  }

  /** Signed value of an int param. */
  int (name: string): number {
    return this.fs(name).int
  }

  out (name: string, value: boolean): boolean {
    return this.ctx.tl.setBit(this.fs(name).bus, value)
  }

  /** Current raw value of a `read` field. */
  read (_field: string): number {
    return 0
  }

  /** A field of this instance was written (at the timeline's current tick). */
  written (_field: string, _attr?: string): void {}

  abstract step (t: number): boolean
  nextEvent (_t: number, _horizon: number): number {
    return Infinity
  }
}

// -------------------------------------------------------------------------------------------------------------------

/** BITS: OUTA..D follow the params A..D. */
export class BitsLogic extends Logic {
  step (): boolean {
    let changed = false
    for (const n of ['A', 'B', 'C', 'D']) if (this.out(`OUT${n}`, this.param(n) !== 0)) changed = true
    return changed
  }
}

/** TTLOUT: on each rising edge of VAL, `onEdge(ttlout number, tick)`. */
export class TtloutLogic extends Logic {
  #prev = false
  rising = 0
  constructor (ctx: BlockContext, number: number, readonly onEdge: (ttlout: number, t: number) => void) {
    super(ctx, 'TTLOUT', number)
  }

  step (t: number): boolean {
    const v = this.bitIn('VAL')
    if (v && !this.#prev) {
      this.rising++
      this.onEdge(this.number, t)
    }
    this.#prev = v
    return false
  }
}

/** CLOCK (clock_sim.py): OUT high for WIDTH every PERIOD from the rising ENABLE; a PERIOD/WIDTH write restarts it. */
export class ClockLogic extends Logic {
  #enabled = false
  #start = 0

  constructor (ctx: BlockContext, number: number) {
    super(ctx, 'CLOCK', number)
  }

  #shape (): { full: number, high: number } {
    const p = this.param('PERIOD')
    const w = this.param('WIDTH')
    let full: number
    if (p === 0 && w === 0) full = 0
    else if (p <= w) full = w + 1
    else if (p < 2) full = 2
    else full = p
    return { full, high: w === 0 ? Math.floor(full / 2) : w }
  }

  step (t: number): boolean {
    const en = this.bitIn('ENABLE')
    if (en && !this.#enabled) this.#start = t
    this.#enabled = en
    const { full, high } = this.#shape()
    const on = en && full > 0 && (t - this.#start) % full < high
    return this.out('OUT', on)
  }

  override nextEvent (t: number): number {
    const { full, high } = this.#shape()
    if (!this.#enabled || full === 0) return Infinity
    const k = Math.floor((t - this.#start) / full)
    const phase = t - this.#start - k * full
    return phase < high ? this.#start + k * full + high : this.#start + (k + 1) * full
  }

  override written (field: string): void {
    if (field === 'PERIOD' || field === 'WIDTH') this.#start = this.ctx.tl.tick
  }
}

interface QueuedEdge {
  readonly at: number
  readonly level: boolean
}

/** PULSE (pulse_doc.md): WIDTH=0 is a delay line; otherwise PULSES pulses of WIDTH every STEP after DELAY per edge. */
export class PulseLogic extends Logic {
  #queue: QueuedEdge[] = []
  #prevTrig = false
  #prevEnable = false
  #out = false
  #dropped = 0

  constructor (ctx: BlockContext, number: number) {
    super(ctx, 'PULSE', number)
  }

  #push (edge: QueuedEdge): void {
    if (this.#queue.length >= 1023) {
      this.#dropped++
      return
    }
    let i = this.#queue.length
    while (i > 0 && (this.#queue[i - 1] as QueuedEdge).at > edge.at) i--
    this.#queue.splice(i, 0, edge)
  }

  step (t: number): boolean {
    const en = this.bitIn('ENABLE')
    const trig = this.bitIn('TRIG')
    if (!en && this.#prevEnable) {
      this.#queue = []
      this.#out = false
    }
    if (en && trig !== this.#prevTrig) {
      const width = this.param('WIDTH')
      let delay = this.param('DELAY')
      if (width === 0) {
        if (delay > 0 && delay < 5) delay = 5
        if (delay === 0) this.#out = trig
        else this.#push({ at: t + delay, level: trig })
      } else {
        const edge = this.param('TRIG_EDGE')
        if ((edge === 0 && trig) || (edge === 1 && !trig) || edge === 2) {
          const w = Math.max(5, width)
          const n = Math.max(1, this.param('PULSES'))
          const step = this.param('STEP')
          for (let i = 0; i < n; i++) {
            const rise = t + delay + i * step
            if (rise === t) this.#out = true
            else this.#push({ at: rise, level: true })
            this.#push({ at: rise + w, level: false })
          }
        }
      }
    }
    this.#prevTrig = trig
    this.#prevEnable = en
    while (this.#queue.length > 0 && (this.#queue[0] as QueuedEdge).at <= t) this.#out = (this.#queue.shift() as QueuedEdge).level
    return this.out('OUT', this.#out)
  }

  override nextEvent (t: number): number {
    const first = this.#queue[0]
    return first === undefined ? Infinity : Math.max(first.at, t + 1)
  }

  override read (field: string): number {
    return field === 'QUEUED' ? this.#queue.length : field === 'DROPPED' ? this.#dropped : 0
  }
}

/** COUNTER (counter_sim.py): counts TRIG edges while enabled; START on a rising ENABLE; SET sets it at once. */
export class CounterLogic extends Logic {
  readonly signal = new StepSignal(0)
  #counter = 0
  #overflow = false
  #carry = false
  #prevEnable = false
  #prevTrig = false

  constructor (ctx: BlockContext, number: number) {
    super(ctx, 'COUNTER', number)
  }

  step (): boolean {
    const en = this.bitIn('ENABLE')
    const trig = this.bitIn('TRIG')
    const onDisable = this.param('OUT_MODE') === 1
    const max0 = this.int('MAX')
    const min0 = this.int('MIN')
    const [min, max] = max0 === 0 && min0 === 0 ? [-0x80000000, 0x7fffffff] : [min0, max0]
    if (en && !this.#prevEnable) {
      this.#counter = this.int('START')
      this.#overflow = false
      this.#carry = false
      if (!onDisable) this.signal.value = this.#counter
    } else if (!en && this.#prevEnable) {
      if (onDisable) {
        this.signal.value = this.#counter
        this.#carry = this.#overflow
      } else {
        this.#carry = false
      }
    } else if (en && trig !== this.#prevTrig) {
      if (!onDisable) this.#carry = false
      const edge = this.param('TRIG_EDGE')
      if ((edge === 0 && trig) || (edge === 1 && !trig) || edge === 2) {
        let step = this.param('STEP') === 0 ? 1 : this.param('STEP')
        if (this.bitIn('DIR')) step = -step
        this.#counter += step
        if (this.#counter > max) {
          this.#counter -= max - min + 1
          this.#overflow = true
          if (!onDisable) this.#carry = true
        } else if (this.#counter < min) {
          this.#counter += max - min + 1
          this.#overflow = true
          if (!onDisable) this.#carry = true
        }
        if (!onDisable) this.signal.value = this.#counter
      }
    }
    this.#prevEnable = en
    this.#prevTrig = trig
    return this.out('CARRY', this.#carry)
  }

  override written (field: string): void {
    if (field === 'SET') {
      this.#counter = this.int('SET')
      if (this.param('OUT_MODE') === 0) this.signal.value = this.#counter
    }
  }
}

/** CALC: OUT = (±INPA ±INPB ±INPC ±INPD) >> SHIFT, evaluated when read. */
export class CalcLogic extends Logic implements PosSignal {
  constructor (ctx: BlockContext, number: number) {
    super(ctx, 'CALC', number)
  }

  get continuous (): boolean {
    return ['INPA', 'INPB', 'INPC', 'INPD'].some((n) => this.posIn(n).continuous)
  }

  valueAt (t: number): number {
    let sum = 0
    for (const n of ['A', 'B', 'C', 'D']) {
      const v = this.posIn(`INP${n}`).valueAt(t)
      sum += this.param(`TYPE${n}`) === 1 ? -v : v
    }
    return (sum | 0) >> this.param('SHIFT')
  }

  step (): boolean {
    return false
  }
}

/**
 * INENC: VAL follows the motor when this encoder has one (INENC1 by default): round(position × countsPerUnit),
 * plus the offset a SETP write makes. CONN is 1; quadrature A, B, Z are not simulated.
 */
export class InencLogic extends Logic implements PosSignal {
  #offset = 0
  #conn = false

  constructor (ctx: BlockContext, number: number, readonly motor: MotorLike | undefined, readonly countsPerUnit: number) {
    super(ctx, 'INENC', number)
  }

  get continuous (): boolean {
    return this.motor !== undefined
  }

  rawAt (t: number): number {
    return this.motor === undefined ? 0 : Math.round(this.motor.positionAt(this.ctx.msAt(t)) * this.countsPerUnit)
  }

  valueAt (t: number): number {
    return (this.rawAt(t) + this.#offset) | 0
  }

  step (): boolean {
    if (this.#conn) return false
    this.#conn = true
    return this.out('CONN', true)
  }

  override written (field: string): void {
    if (field === 'SETP') this.#offset = this.int('SETP') - this.rawAt(this.ctx.tl.tick)
  }
}

/** FMC_IN: the eight ADC channels, a synthetic absorption edge driven by an encoder (adc.ts). */
export function fmcSignals (encoder: PosSignal, countsPerDegree: number, options?: AdcOptions): PosSignal[] {
  return adcSignals(encoder, countsPerDegree, options)
}

// -------------------------------------------------------------------------------------------------------------------
// PCOMP (pcomp_sim.py)

const enum Pc { WAIT_ENABLE = 0, WAIT_DIR = 1, WAIT_PRE_START = 2, WAIT_RISING = 3, WAIT_FALLING = 4 }
const PC_OK = 0
const PC_ERR_PJUMP = 1
const PC_ERR_GUESS = 2

/**
 * Position compare, as the FPGA's reference simulation does it: one state transition per tick, a pulse never twice
 * at one position, direction guessing, relative START, PULSES=0 for ever, a jump past STEP as an error.
 */
export class PcompLogic extends Logic {
  #state = Pc.WAIT_ENABLE
  #active = false
  #out = false
  #health = PC_OK
  #produced = 0
  #dirPos = true
  #latched = 0
  #last = 0
  #next = 0
  #prevEnable = false
  /** Tick of the last transition (one a tick), and when to look again after one. */
  #transitionTick = -1

  constructor (ctx: BlockContext, number: number) {
    super(ctx, 'PCOMP', number)
  }

  #posn (v: number): number {
    return this.param('RELATIVE') === 1 ? v - this.#latched : v
  }

  #pulseStart (): number {
    return this.#dirPos || this.param('RELATIVE') === 0 ? this.int('START') : -this.int('START')
  }

  #pulseStep (): number {
    return this.#dirPos ? this.int('STEP') : -this.int('STEP')
  }

  #pulseWidth (): number {
    return this.#dirPos ? this.int('WIDTH') : -this.int('WIDTH')
  }

  #reached (posn: number): boolean {
    return this.#next >= this.#last ? posn >= this.#next : posn <= this.#next
  }

  #jumped (posn: number): boolean {
    const tooFar = this.#last + this.#pulseStep()
    return (this.#last <= this.#next && this.#next <= tooFar && tooFar <= posn) ||
      (this.#last >= this.#next && this.#next >= tooFar && tooFar >= posn)
  }

  /** Whether the current state would move on at position `posn` (no side effects). */
  #ready (posn: number): boolean {
    switch (this.#state) {
      case Pc.WAIT_DIR: {
        if (this.param('RELATIVE') === 1) {
          const thresh = this.int('START') + this.int('PRE_START')
          return thresh <= 0 || Math.abs(posn) >= thresh
        }
        return posn !== this.int('START')
      }
      case Pc.WAIT_PRE_START:
        return this.#dirPos ? posn < this.#pulseStart() - this.int('PRE_START') : posn > this.#pulseStart() + this.int('PRE_START')
      case Pc.WAIT_RISING:
      case Pc.WAIT_FALLING:
        return this.#reached(posn)
      default:
        return false
    }
  }

  #enable (t: number): void {
    this.#active = true
    this.#health = PC_OK
    this.#produced = 0
    this.#latched = this.posIn('INP').valueAt(t)
    const dir = this.param('DIR')
    if (dir === 2) {
      this.#state = Pc.WAIT_DIR
      return
    }
    this.#dirPos = dir === 0
    this.#next = this.#dirPos ? this.int('WIDTH') : -this.int('WIDTH')
    if (this.param('RELATIVE') === 1 && this.int('PRE_START') === 0 && this.int('START') === 0) {
      this.#out = true
      this.#last = 0
      this.#produced = 1
      this.#state = Pc.WAIT_FALLING
    } else {
      this.#state = Pc.WAIT_PRE_START
    }
  }

  /** One transition from the current state at tick t, if its condition holds. */
  #advance (t: number): boolean {
    const posn = this.#posn(this.posIn('INP').valueAt(t))
    if (!this.#ready(posn)) return false
    switch (this.#state) {
      case Pc.WAIT_DIR: {
        if (this.param('RELATIVE') === 1) {
          const thresh = this.int('START') + this.int('PRE_START')
          if (thresh <= 0) {
            this.#health = PC_ERR_GUESS
            this.#active = false
            this.#state = Pc.WAIT_ENABLE
          } else if (this.int('PRE_START') > 0) {
            this.#dirPos = posn < 0
            this.#state = Pc.WAIT_PRE_START
          } else {
            this.#out = true
            this.#produced = 1
            this.#dirPos = posn > 0
            const start = this.int('START')
            const width = this.int('WIDTH')
            this.#last = this.#dirPos ? start : -start
            this.#next = this.#dirPos ? start + width : -start - width
            this.#state = Pc.WAIT_FALLING
          }
        } else {
          this.#dirPos = posn < this.int('START')
          this.#state = Pc.WAIT_PRE_START
        }
        return true
      }
      case Pc.WAIT_PRE_START:
        this.#last = this.#dirPos ? this.#pulseStart() - 1 : this.#pulseStart() + 1
        this.#next = this.#pulseStart()
        this.#state = Pc.WAIT_RISING
        return true
      case Pc.WAIT_RISING:
        if (this.#jumped(posn)) {
          this.#active = false
          this.#health = PC_ERR_PJUMP
          this.#state = Pc.WAIT_ENABLE
        } else {
          this.#out = true
          this.#produced++
          const next = this.#next
          this.#next = next + this.#pulseWidth()
          this.#last = next
          this.#state = Pc.WAIT_FALLING
        }
        return true
      case Pc.WAIT_FALLING:
        this.#out = false
        if (this.#produced === this.param('PULSES')) {
          this.#active = false
          this.#state = Pc.WAIT_ENABLE
        } else if (this.#jumped(posn)) {
          this.#active = false
          this.#health = PC_ERR_PJUMP
          this.#state = Pc.WAIT_ENABLE
        } else {
          const last = this.#last
          this.#last = this.#next
          this.#next = last + this.#pulseStep()
          this.#state = Pc.WAIT_RISING
        }
        return true
      default:
        return false
    }
  }

  step (t: number): boolean {
    const en = this.bitIn('ENABLE')
    if (!en && this.#prevEnable) {
      this.#active = false
      this.#out = false
      this.#state = Pc.WAIT_ENABLE
    } else if (en && !this.#prevEnable && this.#state === Pc.WAIT_ENABLE) {
      this.#enable(t)
      this.#transitionTick = t
    } else if (en && this.#state !== Pc.WAIT_ENABLE && this.#transitionTick !== t) {
      if (this.#advance(t)) this.#transitionTick = t
    }
    this.#prevEnable = en
    const a = this.out('ACTIVE', this.#active)
    const o = this.out('OUT', this.#out)
    return a || o
  }

  override nextEvent (t: number, horizon: number): number {
    if (this.#state === Pc.WAIT_ENABLE) return Infinity
    if (this.#transitionTick === t) return t + 1
    const to = Math.min(horizon, (Math.floor(t / this.ctx.tl.sliceTicks) + 1) * this.ctx.tl.sliceTicks)
    const hit = this.ctx.tl.firstTick(this.posIn('INP'), t + 1, to, (v) => this.#ready(this.#posn(v)))
    return hit !== Infinity ? hit : to > t && to < horizon ? to : Infinity
  }

  override read (field: string): number {
    switch (field) {
      case 'HEALTH': return this.#health
      case 'PRODUCED': return this.#produced
      case 'STATE': return this.#state
      default: return 0
    }
  }
}

// -------------------------------------------------------------------------------------------------------------------
// SEQ (seq_doc.md)

const enum Sq { UNREADY = 0, WAIT_ENABLE = 1, WAIT_TRIGGER = 2, PHASE1 = 3, PHASE2 = 4 }

interface SeqRow {
  readonly repeats: number
  readonly trigger: number
  readonly position: number
  readonly time1: number
  readonly time2: number
  readonly out1: number
  readonly out2: number
}

function decodeRow (words: readonly number[], at: number): SeqRow {
  const w0 = (words[at] ?? 0) >>> 0
  return {
    repeats: w0 & 0xffff,
    trigger: (w0 >>> 16) & 0xf,
    out1: (w0 >>> 20) & 0x3f,
    out2: (w0 >>> 26) & 0x3f,
    position: (words[at + 1] ?? 0) | 0,
    time1: (words[at + 2] ?? 0) >>> 0,
    time2: (words[at + 3] ?? 0) >>> 0
  }
}

const SEQ_OUTS = ['OUTA', 'OUTB', 'OUTC', 'OUTD', 'OUTE', 'OUTF']

/**
 * Sequencer: each line waits for its trigger, runs phase 1 (if TIME1 > 0) then phase 2, REPEATS times (0: for
 * ever); the table runs SEQ.REPEATS times. Times are in PRESCALE ticks (at least one tick). A STREAMING table is
 * consumed as it runs; running out before the last chunk is a DMA underrun.
 */
export class SeqLogic extends Logic {
  #state = Sq.WAIT_ENABLE
  #active = false
  #outs = 0
  #line = 0
  #lineRepeat = 1
  #tableRepeat = 1
  #phaseEnd = 0
  #health = 0
  #prevEnable = false

  constructor (ctx: BlockContext, number: number) {
    super(ctx, 'SEQ', number)
  }

  #rows (): number {
    const t = this.fs('TABLE').table
    if (t === undefined) return 0
    const words = t.mode === 'FIXED' ? t.words : t.queued
    return Math.min(SEQ_MAX_ROWS, Math.floor(words.length / 4))
  }

  #row (i: number): SeqRow {
    const t = this.fs('TABLE').table
    return decodeRow(t === undefined ? [] : t.mode === 'FIXED' ? t.words : t.queued, i * 4)
  }

  #streaming (): boolean {
    const mode = this.fs('TABLE').table?.mode
    return mode === 'STREAMING' || mode === 'STREAMING_LAST'
  }

  #ticks (units: number): number {
    return Math.max(1, units * Math.max(1, this.param('PRESCALE')))
  }

  #triggerMet (trigger: number, position: number, t: number): boolean {
    if (trigger === 0) return true
    if (trigger <= 6) {
      const bit = this.bitIn(['BITA', 'BITB', 'BITC'][(trigger - 1) >> 1] as string)
      return trigger % 2 === 0 ? bit : !bit
    }
    if (trigger <= 12) {
      const v = this.posIn(['POSA', 'POSB', 'POSC'][(trigger - 7) >> 1] as string).valueAt(t)
      return trigger % 2 === 1 ? v >= position : v <= position
    }
    return false
  }

  #stop (): void {
    this.#active = false
    this.#outs = 0
    this.#state = Sq.WAIT_ENABLE
  }

  #finishLine (): void {
    const row = this.#row(this.#line)
    this.#lineRepeat++
    if (row.repeats === 0 || this.#lineRepeat <= row.repeats) {
      this.#state = Sq.WAIT_TRIGGER
      return
    }
    this.#lineRepeat = 1
    if (this.#streaming()) {
      const table = this.fs('TABLE').table
      table?.queued.splice(0, 4)
      if (this.#rows() === 0) {
        if (table?.mode !== 'STREAMING_LAST') this.#health = 1
        this.#stop()
        return
      }
      this.#state = Sq.WAIT_TRIGGER
      return
    }
    this.#line++
    if (this.#line >= this.#rows()) {
      this.#line = 0
      this.#tableRepeat++
      const repeats = this.param('REPEATS')
      if (repeats !== 0 && this.#tableRepeat > repeats) {
        this.#stop()
        return
      }
    }
    this.#state = Sq.WAIT_TRIGGER
  }

  step (t: number): boolean {
    const en = this.bitIn('ENABLE')
    if (!en && this.#prevEnable) this.#stop()
    else if (en && !this.#prevEnable && this.#rows() > 0) {
      this.#active = true
      this.#health = 0
      this.#line = 0
      this.#lineRepeat = 1
      this.#tableRepeat = 1
      this.#state = Sq.WAIT_TRIGGER
    }
    this.#prevEnable = en
    for (let k = 0; k < 16 && this.#active; k++) {
      if (this.#state === Sq.WAIT_TRIGGER) {
        const row = this.#row(this.#line)
        if (!this.#triggerMet(row.trigger, row.position, t)) break
        if (row.time1 > 0) {
          this.#state = Sq.PHASE1
          this.#outs = row.out1
          this.#phaseEnd = t + this.#ticks(row.time1)
        } else {
          this.#state = Sq.PHASE2
          this.#outs = row.out2
          this.#phaseEnd = t + this.#ticks(row.time2)
        }
      } else if (this.#state === Sq.PHASE1 && t >= this.#phaseEnd) {
        const row = this.#row(this.#line)
        this.#state = Sq.PHASE2
        this.#outs = row.out2
        this.#phaseEnd = t + this.#ticks(row.time2)
      } else if (this.#state === Sq.PHASE2 && t >= this.#phaseEnd) {
        this.#finishLine()
      } else {
        break
      }
    }
    let changed = this.out('ACTIVE', this.#active)
    SEQ_OUTS.forEach((n, i) => { if (this.out(n, (this.#outs & (1 << i)) !== 0)) changed = true })
    return changed
  }

  override nextEvent (t: number, horizon: number): number {
    if (!this.#active) return Infinity
    if (this.#state === Sq.PHASE1 || this.#state === Sq.PHASE2) return Math.max(this.#phaseEnd, t + 1)
    if (this.#state === Sq.WAIT_TRIGGER) {
      const row = this.#row(this.#line)
      if (row.trigger < 7) return Infinity
      const sig = this.posIn(['POSA', 'POSB', 'POSC'][(row.trigger - 7) >> 1] as string)
      const ge = row.trigger % 2 === 1
      return this.ctx.tl.firstTick(sig, t + 1, horizon, (v) => ge ? v >= row.position : v <= row.position)
    }
    return Infinity
  }

  override read (field: string): number {
    switch (field) {
      case 'TABLE_REPEAT': return this.#active ? this.#tableRepeat : 0
      case 'TABLE_LINE': return this.#active ? this.#line + 1 : 0
      case 'LINE_REPEAT': return this.#active ? this.#lineRepeat : 0
      case 'STATE': return this.#state
      case 'HEALTH': return this.#health
      default: return 0
    }
  }
}

/** Milliseconds → ticks. */
export function ticksOfMs (ms: number): number {
  return Math.round(ms * TICKS_PER_MS)
}
