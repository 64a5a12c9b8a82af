/**
 * The simulated PandA without its ports: the model (what the control port reads and writes), the blocks wired to
 * the buses of one timeline, the clock that drives it, the motor the encoder follows and the trigger sinks TTLOUT
 * edges go to. SimPanda (sim-panda.ts) puts the two TCP servers in front of it; tests can use it directly.
 */
import type { AdcOptions } from './adc.js'
import {
  BitsLogic, CalcLogic, ClockLogic, CounterLogic, InencLogic, PcompLogic, PulseLogic, SeqLogic, TtloutLogic,
  fmcSignals, type BlockContext, type Logic, type MotorLike
} from './blocks.js'
import { fail } from './cparse.js'
import { CLOCK_HZ, TICKS_PER_MS } from './definitions.js'
import { Model, type FieldState, type Reply } from './model.js'
import { PcapLogic, type CaptureSink } from './pcap.js'
import { Timeline, type SimBlock } from './timeline.js'
import { CaptureLayout, type CaptureField } from './wire.js'

/** The clock the simulation runs on: milliseconds and one-shot timers (the simulated IOC's SimClock fits). */
export interface SimPandaClock {
  readonly nowMs: () => number
  readonly setTimer: (fn: () => void, ms: number) => () => void
}

/** A TTLOUT rising edge, as a trigger sink receives it. */
export interface TriggerEdge {
  /** When the edge happened, on the simulation's clock (ms). */
  readonly atMs: number
  /** Which TTLOUT (1..10). */
  readonly ttlout: number
}

/** Something a TTLOUT triggers, e.g. the simulated camera (its `externalTrigger` takes `{ atMs }`). */
export interface TriggerSink {
  externalTrigger: (edge: TriggerEdge) => unknown
  /** The TTLOUT wired to it (1..10); default: the i-th sink is on TTLOUT i+1. */
  readonly ttlout?: number
}

export interface SimulationOptions {
  /** What the encoder follows (none: the encoder stays at 0). */
  readonly motor?: MotorLike
  /** Encoder counts per motor unit (default 8000/360: 8000 counts per revolution, motor in degrees). */
  readonly countsPerUnit?: number
  /** Which INENC follows the motor (default 1). */
  readonly encoder?: number
  readonly triggerSinks?: readonly TriggerSink[]
  /** The synthetic absorption edge on FMC_IN (adc.ts). */
  readonly adc?: AdcOptions
  /** Default: wall-clock time (performance.timeOrigin + performance.now()) and setTimeout. */
  readonly clock?: SimPandaClock
  /** Motion slice for position crossings, ms (default 1). */
  readonly sliceMs?: number
}

export const realClock: SimPandaClock = {
  nowMs: () => performance.timeOrigin + performance.now(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms)
    return () => clearTimeout(t)
  }
}

/** Counts of what happened, for tests and the CLI. */
export interface SimPandaStats {
  readonly tick: number
  readonly events: number
  /** Rising edges per TTLOUT (index 0 is TTLOUT1). */
  readonly ttloutEdges: readonly number[]
  /** Trigger sink calls that threw. */
  readonly sinkErrors: number
}

export class PandaSimulation {
  readonly model: Model
  readonly timeline: Timeline
  readonly clock: SimPandaClock
  /** The clock's time at tick 0. */
  readonly t0Ms: number
  readonly pcap: PcapLogic
  readonly #logics = new Map<string, Logic>()
  readonly #ttlouts: TtloutLogic[] = []
  readonly #sinkEdges: TriggerEdge[] = []
  readonly #sinks: readonly TriggerSink[]
  #sinkErrors = 0

  constructor (options: SimulationOptions = {}) {
    this.clock = options.clock ?? realClock
    this.t0Ms = this.clock.nowMs()
    this.#sinks = options.triggerSinks ?? []
    const tl = this.timeline = new Timeline({ sliceTicks: Math.max(1, Math.round((options.sliceMs ?? 1) * TICKS_PER_MS)) })
    const model = this.model = new Model({
      bit: (i) => tl.bit(i),
      bitChanges: (i) => tl.bitChanges[i] ?? 0,
      position: (i) => tl.position(i).valueAt(tl.tick),
      read: (fs) => this.#logicOf(fs)?.read(fs.spec.name) ?? 0,
      written: (fs, attr) => this.#logicOf(fs)?.written(fs.spec.name, attr)
    })
    const ctx: BlockContext = { tl, model, msAt: (t) => this.msAt(t) }
    const blocks: SimBlock[] = []
    const add = <T extends Logic>(logic: T): T => {
      this.#logics.set(`${logic.block}${logic.number}`, logic)
      blocks.push(logic)
      return logic
    }
    const cpu = options.countsPerUnit ?? 8000 / 360
    const which = options.encoder ?? 1
    add(new BitsLogic(ctx, 'BITS', 1))
    const encoders: InencLogic[] = []
    for (let n = 1; n <= 4; n++) {
      const enc = add(new InencLogic(ctx, n, n === which ? options.motor : undefined, cpu))
      tl.positions[model.field('INENC', 'VAL', n).bus] = enc
      encoders.push(enc)
    }
    const adc = fmcSignals(encoders[which - 1] ?? (encoders[0] as InencLogic), cpu, options.adc)
    adc.forEach((s, i) => { tl.positions[model.field('FMC_IN', `VAL${i + 1}`).bus] = s })
    for (let n = 1; n <= 8; n++) tl.positions[model.field('COUNTER', 'OUT', n).bus] = add(new CounterLogic(ctx, n)).signal
    for (let n = 1; n <= 2; n++) tl.positions[model.field('CALC', 'OUT', n).bus] = add(new CalcLogic(ctx, n))
    for (let n = 1; n <= 2; n++) add(new ClockLogic(ctx, n))
    for (let n = 1; n <= 4; n++) add(new PcompLogic(ctx, n))
    for (let n = 1; n <= 4; n++) add(new PulseLogic(ctx, n))
    for (let n = 1; n <= 4; n++) add(new SeqLogic(ctx, n))
    this.pcap = add(new PcapLogic(ctx))
    for (let n = 1; n <= 10; n++) {
      this.#ttlouts.push(add(new TtloutLogic(ctx, n, (ttlout, t) => { this.#sinkEdges.push({ ttlout, atMs: this.msAt(t) }) })))
    }
    tl.blocks.push(...blocks)
    tl.beforeEvent = (t) => this.pcap.accumulateTo(t)
    tl.settle(0)
  }

  #logicOf (fs: FieldState): Logic | undefined {
    return this.#logics.get(`${fs.block.name}${fs.number}`)
  }

  /** The clock's time at tick `t`. */
  msAt (t: number): number {
    return this.t0Ms + t / TICKS_PER_MS
  }

  /** The tick of a clock time (never before tick 0). */
  tickAt (ms: number): number {
    return Math.max(0, Math.round((ms - this.t0Ms) * TICKS_PER_MS))
  }

  get stats (): SimPandaStats {
    return {
      tick: this.timeline.tick,
      events: this.timeline.events,
      ttloutEdges: this.#ttlouts.map((t) => t.rising),
      sinkErrors: this.#sinkErrors
    }
  }

  /** Runs the blocks up to the clock's now, then hands rows to the capture and edges to the trigger sinks. */
  sync (): void {
    const target = this.tickAt(this.clock.nowMs())
    if (target > this.timeline.tick) this.timeline.advanceTo(target)
    this.#deliver()
  }

  /** After a write at the current tick: the blocks react in the same tick. */
  settle (): void {
    this.timeline.settle(this.timeline.tick)
    this.#deliver()
  }

  #deliver (): void {
    this.pcap.flush()
    if (this.#sinkEdges.length === 0) return
    const edges = this.#sinkEdges.splice(0)
    for (const edge of edges) {
      this.#sinks.forEach((sink, i) => {
        if ((sink.ttlout ?? i + 1) !== edge.ttlout) return
        try {
          sink.externalTrigger(edge)
        } catch {
          this.#sinkErrors++
        }
      })
    }
  }

  /** `TARGET=value` as the control port does it (throws ParseError with the box's message). */
  put (target: string, value: string | number): void {
    this.sync()
    this.model.put(target, String(value))
    this.settle()
  }

  /** `TARGET?` as the control port does it. */
  get (target: string): Reply {
    this.sync()
    return this.model.get(target)
  }

  /** The layout `*PCAP.ARM=` would capture with now (throws `Nothing configured for capture`). */
  layout (): CaptureLayout {
    const layout = captureLayout(this.model)
    if (layout.rawWords === 0) fail('Nothing configured for capture')
    return layout
  }

  /** Arms PCAP with rows going to `sink`. */
  arm (sink: CaptureSink, layout = this.layout()): CaptureLayout {
    this.sync()
    this.pcap.arm(sink, layout, this.timeline.tick)
    this.settle()
    return layout
  }

  disarm (): void {
    this.sync()
    this.pcap.disarm(this.timeline.tick)
    this.settle()
  }
}

/** What `*PCAP.ARM=` captures, from the CAPTURE attributes (prepare.c prepare_captured_fields). */
export function captureLayout (model: Model): CaptureLayout {
  const captured: CaptureField[] = []
  const tsScale = 1 / CLOCK_HZ
  let samples: CaptureField | undefined
  for (const fs of model.outputs) {
    if (fs.spec.cls === 'ext_out') {
      const base = { name: fs.name, capture: 'Value', scale: tsScale, offset: 0, units: 's', source: fs.spec.group ?? 0 }
      const field: CaptureField = fs.spec.ext === 'bits'
        ? { ...base, group: 'unscaled', kind: 'bits' }
        : fs.spec.ext === 'samples'
          ? { ...base, group: 'scaled32', kind: 'samples' }
          : { ...base, group: 'scaled64', kind: fs.spec.name === 'TS_START' ? 'ts_start' : fs.spec.name === 'TS_END' ? 'ts_end' : 'ts_trig' }
      if (fs.spec.ext === 'samples') samples = field
      if (fs.capture) captured.push(field)
      continue
    }
    for (const option of model.captured(fs)) {
      const base = { name: fs.name, capture: option, source: fs.bus, scale: fs.scale, offset: fs.offset, units: fs.units }
      switch (option) {
        case 'Value': captured.push({ ...base, group: 'scaled32', kind: 'value' }); break
        case 'Diff': captured.push({ ...base, group: 'scaled32', kind: 'diff' }); break
        case 'Min': captured.push({ ...base, group: 'scaled32', kind: 'min' }); break
        case 'Max': captured.push({ ...base, group: 'scaled32', kind: 'max' }); break
        case 'Sum': captured.push({ ...base, group: 'scaled64', kind: 'sum' }); break
        case 'Mean': captured.push({ ...base, group: 'averaged', kind: 'mean' }); break
      }
    }
  }
  const anon: CaptureField = samples ?? {
    name: 'PCAP.GATE_DURATION', capture: 'Value', group: 'scaled32', kind: 'samples', source: 0, scale: tsScale, offset: 0, units: 's'
  }
  return new CaptureLayout(captured, anon)
}
