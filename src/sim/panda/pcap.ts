/**
 * The simulated PCAP block (PandABlocks-FPGA modules/pcap/pcap_doc.md and pcap_sim.py): `*PCAP.ARM=` raises ACTIVE;
 * capture runs while ENABLE is high; GATE selects the ticks that count towards Sum, Mean, Min, Max, Diff and
 * GATE_DURATION; each selected TRIG edge emits one row of the values since the previous row; timestamps are ticks
 * since ENABLE rose. A falling ENABLE ends the capture (`Ok`), a disarm too (`Disarmed`), and two triggers closer
 * than the row has words end it with `Framing error` (HEALTH `Capture events too close together`).
 *
 * Rows are written in the FPGA's raw layout (wire.ts CaptureLayout) and handed to a CaptureSink in batches by
 * `flush()`.
 */
import { Logic, type BlockContext } from './blocks.js'
import type { CaptureLayout, RawField } from './wire.js'

/** How a capture ended, as `*PCAP.COMPLETION?` and the END line say it. */
export type Completion = 'Ok' | 'Disarmed' | 'Framing error' | 'Driver data overrun' | 'DMA data error'

/** Where a capture's rows go (the data server's run). */
export interface CaptureSink {
  /** ENABLE rose: the capture started at this tick (the header's start_time). */
  started: (tick: number) => void
  /** Whole raw rows, `count` of them. The bytes are the sink's to keep. */
  rows: (bytes: Uint8Array, count: number) => void
  /** The capture ended. */
  ended: (reason: Completion, tick: number) => void
}

interface Accumulator {
  sum: number
  min: number
  max: number
  diff: number
  rise: number
}

const HEALTH_TOO_CLOSE = 1

export class PcapLogic extends Logic {
  #active = false
  #health = 0
  #sink: CaptureSink | undefined
  #layout: CaptureLayout | undefined
  #enabled = false
  #tsEnable = 0
  #prevEnable = false
  #prevTrig = false
  #gate = false
  #lastAcc = 0
  #lastCapture = -Infinity
  #gateTicks = 0
  #tsStart = -1
  #tsEnd = -1
  readonly #acc = new Map<number, Accumulator>()
  #pending = new Uint8Array(4096)
  #pendingView = new DataView(this.#pending.buffer)
  #pendingBytes = 0
  #pendingRows = 0
  /** Rows this capture has produced (`*PCAP.CAPTURED?`). */
  captured = 0

  constructor (ctx: BlockContext) {
    super(ctx, 'PCAP', 1)
  }

  get active (): boolean {
    return this.#active
  }

  /** `*PCAP.ARM=`: ACTIVE rises now; if ENABLE is already high the capture starts now too. */
  arm (sink: CaptureSink, layout: CaptureLayout, t: number): void {
    this.#sink = sink
    this.#layout = layout
    this.#active = true
    this.#health = 0
    this.#enabled = false
    this.captured = 0
    this.#lastCapture = -Infinity
    this.#acc.clear()
    for (const f of layout.fields) {
      if (f.kind === 'value' || f.kind === 'diff' || f.kind === 'min' || f.kind === 'max' || f.kind === 'sum' || f.kind === 'mean') {
        this.#acc.set(f.source, { sum: 0, min: Infinity, max: -Infinity, diff: 0, rise: 0 })
      }
    }
    if (this.bitIn('ENABLE')) this.#enable(t)
  }

  /** Rate mode: ACTIVE without the blocks producing rows (the rate generator does). */
  armExternal (): void {
    this.#active = true
    this.#health = 0
    this.#sink = undefined
  }

  /** `*PCAP.DISARM=`. */
  disarm (t: number): void {
    if (this.#active) this.#end('Disarmed', t)
  }

  /** Ends the capture with a hardware fault (the simulation has none of its own: tests inject them). */
  fault (reason: Completion, t: number): void {
    if (this.#active) this.#end(reason, t)
  }

  /** End of an external (rate mode) capture. */
  endExternal (): void {
    this.#active = false
  }

  #enable (t: number): void {
    this.#enabled = true
    this.#tsEnable = t
    this.#gateTicks = 0
    this.#tsStart = -1
    this.#tsEnd = -1
    for (const a of this.#acc.values()) Object.assign(a, { sum: 0, min: Infinity, max: -Infinity, diff: 0 })
    this.#gate = false
    if (this.bitIn('GATE')) this.#rise(t)
    this.#sink?.started(t)
  }

  #end (reason: Completion, t: number): void {
    this.flush()
    this.#active = false
    this.#enabled = false
    const sink = this.#sink
    this.#sink = undefined
    sink?.ended(reason, t)
  }

  /** Adds the gated ticks since the last call up to `t` (the timeline calls this before every event). */
  accumulateTo (t: number): void {
    if (this.#enabled && this.#gate && t > this.#lastAcc) {
      for (const [source, a] of this.#acc) {
        const s = this.ctx.tl.stats(this.ctx.tl.position(source), this.#lastAcc, t)
        a.sum += s.sum
        if (s.min < a.min) a.min = s.min
        if (s.max > a.max) a.max = s.max
      }
      this.#gateTicks += t - this.#lastAcc
    }
    this.#lastAcc = Math.max(this.#lastAcc, t)
  }

  #rise (t: number): void {
    this.#gate = true
    this.#lastAcc = t
    if (this.#tsStart < 0) this.#tsStart = t - this.#tsEnable
    for (const [source, a] of this.#acc) a.rise = this.ctx.tl.position(source).valueAt(t)
  }

  #fall (t: number): void {
    this.#gate = false
    this.#tsEnd = t - this.#tsEnable
    for (const [source, a] of this.#acc) a.diff += this.ctx.tl.position(source).valueAt(t) - a.rise
  }

  #capture (t: number): void {
    const layout = this.#layout as CaptureLayout
    if (t - this.#lastCapture < layout.rawWords) {
      this.#health = HEALTH_TOO_CLOSE
      this.#end('Framing error', t)
      return
    }
    this.#lastCapture = t
    const gated = this.#gate
    if (gated) this.#fall(t)
    this.#writeRow(layout, t)
    this.#gateTicks = 0
    this.#tsStart = -1
    this.#tsEnd = -1
    for (const a of this.#acc.values()) Object.assign(a, { sum: 0, min: Infinity, max: -Infinity, diff: 0 })
    if (gated) this.#rise(t)
  }

  #writeRow (layout: CaptureLayout, t: number): void {
    const bytes = layout.rawBytes
    if (this.#pendingBytes + bytes > this.#pending.length) {
      const bigger = new Uint8Array(Math.max(this.#pending.length * 2, this.#pendingBytes + bytes))
      bigger.set(this.#pending.subarray(0, this.#pendingBytes))
      this.#pending = bigger
      this.#pendingView = new DataView(bigger.buffer)
    }
    const v = this.#pendingView
    const base = this.#pendingBytes
    const shift = 2 ** this.param('SHIFT_SUM')
    for (const f of layout.fields) {
      const at = base + f.word * 4
      const a = this.#acc.get(f.source)
      switch (f.kind) {
        case 'samples': v.setUint32(at, Math.min(0xffffffff, Math.floor(this.#gateTicks / shift)), true); break
        case 'bits': v.setUint32(at, this.ctx.tl.bitWord(f.source), true); break
        case 'value': v.setInt32(at, this.ctx.tl.position(f.source).valueAt(t) | 0, true); break
        case 'diff': v.setInt32(at, (a?.diff ?? 0) | 0, true); break
        case 'min': v.setInt32(at, a === undefined || a.min === Infinity ? 0 : a.min | 0, true); break
        case 'max': v.setInt32(at, a === undefined || a.max === -Infinity ? 0 : a.max | 0, true); break
        case 'sum':
        case 'mean': setInt64(v, at, Math.floor((a?.sum ?? 0) / shift)); break
        case 'ts_start': setInt64(v, at, this.#tsStart); break
        case 'ts_end': setInt64(v, at, this.#tsEnd); break
        case 'ts_trig': setInt64(v, at, t - this.#tsEnable); break
      }
    }
    this.#pendingBytes += bytes
    this.#pendingRows++
    this.captured++
  }

  /** Hands the rows written since the last flush to the sink. */
  flush (): void {
    if (this.#pendingRows === 0) return
    const out = this.#pending.slice(0, this.#pendingBytes)
    const rows = this.#pendingRows
    this.#pendingBytes = 0
    this.#pendingRows = 0
    this.#sink?.rows(out, rows)
  }

  step (t: number): boolean {
    const en = this.bitIn('ENABLE')
    const gate = this.bitIn('GATE')
    const trig = this.bitIn('TRIG')
    if (this.#active && this.#sink !== undefined) {
      if (en && !this.#prevEnable && !this.#enabled) this.#enable(t)
      else if (!en && this.#prevEnable && this.#enabled) this.#end('Ok', t)
      if (this.#enabled) {
        if (gate !== this.#gate) {
          if (gate) this.#rise(t)
          else this.#fall(t)
        }
        if (trig !== this.#prevTrig) {
          const edge = this.param('TRIG_EDGE')
          if ((edge === 0 && trig) || (edge === 1 && !trig) || edge === 2) this.#capture(t)
        }
      }
    }
    this.#prevEnable = en
    this.#prevTrig = trig
    return this.out('ACTIVE', this.#active)
  }

  override read (field: string): number {
    return field === 'HEALTH' ? this.#health : 0
  }
}

function setInt64 (view: DataView, at: number, value: number): void {
  view.setBigInt64(at, BigInt(Math.round(value)), true)
}

/** Raw fields of a layout that a row needs from the pos bus (for tests and the rate generator). */
export function posFields (layout: CaptureLayout): RawField[] {
  return layout.fields.filter((f) => f.kind !== 'bits' && f.kind !== 'samples' && !f.kind.startsWith('ts_'))
}
