/**
 * Rate mode, for benchmarks: instead of the blocks, `*PCAP.ARM=` starts rows at a fixed rate (for example a million
 * a second) with whatever fields are set to capture. One block of rows is built at arm time and appended again and
 * again (the data server encodes it once per client format), so the cost per row is close to nothing: values repeat
 * every block. The capture ends with `Ok` after `rows` rows, or `Disarmed`.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import { CLOCK_HZ } from './definitions.js'
import type { CaptureRun } from './data-server.js'
import type { Completion } from './pcap.js'
import type { CaptureLayout } from './wire.js'

export interface RateModeOptions {
  /** Rows per second. */
  readonly rowsPerSecond: number
  /** Rows in each capture, then `END <rows> Ok` (default: until `*PCAP.DISARM=`). */
  readonly rows?: number
  /** Rows in the prebuilt block (default: a millisecond's worth, 1..65536). */
  readonly blockRows?: number
}

export interface RateClock {
  readonly nowMs: () => number
  readonly setTimer: (fn: () => void, ms: number) => () => void
}

/**
 * The prebuilt rows: row i of the block has TS_TRIG = (i + 1) periods, GATE_DURATION = one period less a tick,
 * positions i, bits i & 0xff, sums i times the samples (so Means are i).
 */
export function rateBlock (layout: CaptureLayout, rows: number, rowsPerSecond: number): Uint8Array {
  const period = Math.max(1, Math.round(CLOCK_HZ / rowsPerSecond))
  const samples = Math.max(1, period - 1)
  const out = new Uint8Array(rows * layout.rawBytes)
  const v = new DataView(out.buffer)
  for (let i = 0; i < rows; i++) {
    const base = i * layout.rawBytes
    for (const f of layout.fields) {
      const at = base + f.word * 4
      switch (f.kind) {
        case 'samples': v.setUint32(at, samples, true); break
        case 'bits': v.setUint32(at, i & 0xff, true); break
        case 'value': case 'min': case 'diff': v.setInt32(at, i, true); break
        case 'max': v.setInt32(at, i + 1, true); break
        case 'sum': case 'mean': v.setBigInt64(at, BigInt(i) * BigInt(samples), true); break
        case 'ts_start': v.setBigInt64(at, BigInt(i * period), true); break
        case 'ts_end': v.setBigInt64(at, BigInt(i * period + samples), true); break
        case 'ts_trig': v.setBigInt64(at, BigInt((i + 1) * period), true); break
      }
    }
  }
  return out
}

/** Feeds a run from the prebuilt block on a timer until `rows` or `stop()`. */
export class RateGenerator {
  readonly blockRows: number
  readonly #block: Uint8Array
  #emitted = 0
  #startMs: number
  #cancel: (() => void) | undefined
  #done = false

  constructor (readonly run: CaptureRun, readonly options: RateModeOptions, readonly clock: RateClock, readonly onEnd: () => void) {
    if (!(options.rowsPerSecond > 0)) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `simulated PandA rate mode: rowsPerSecond must be > 0, got ${options.rowsPerSecond}`)
    }
    this.blockRows = options.blockRows ?? Math.min(65536, Math.max(1, Math.round(options.rowsPerSecond / 1000)))
    this.#block = rateBlock(run.layout, this.blockRows, options.rowsPerSecond)
    this.#startMs = clock.nowMs()
    run.start(this.#startMs)
    this.#schedule()
  }

  #schedule (): void {
    this.#cancel = this.clock.setTimer(() => this.#tick(), 1)
  }

  #tick (): void {
    this.#cancel = undefined
    if (this.#done) return
    const limit = this.options.rows ?? Infinity
    const due = Math.min(limit, Math.floor((this.clock.nowMs() - this.#startMs) * this.options.rowsPerSecond / 1000))
    const rb = this.run.layout.rawBytes
    while (due - this.#emitted >= this.blockRows) {
      this.run.append(this.#block, this.blockRows, true)
      this.#emitted += this.blockRows
    }
    if (this.#emitted < due && due === limit) {
      const n = due - this.#emitted
      this.run.append(this.#block.slice(0, n * rb), n)
      this.#emitted += n
    }
    if (this.#emitted >= limit) {
      this.#finish('Ok')
      return
    }
    this.#schedule()
  }

  /** Rows appended so far. */
  get emitted (): number {
    return this.#emitted
  }

  #finish (reason: Completion): void {
    if (this.#done) return
    this.#done = true
    this.#cancel?.()
    this.run.end(reason, this.clock.nowMs())
    this.onEnd()
  }

  /** `*PCAP.DISARM=` (or an injected fault). */
  stop (reason: Completion = 'Disarmed'): void {
    this.#finish(reason)
  }
}
