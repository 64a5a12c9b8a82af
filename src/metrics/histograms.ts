/**
 * Per-thread HDR histograms (hdr-histogram-js, WebAssembly build) with unit-suffixed names, and their merge across
 * threads: a worker encodes its histograms (compressed base64, small) into its Stats message, the supervisor decodes
 * and adds them.
 */
import * as hdr from 'hdr-histogram-js'
import type { LatencySummary } from './summary.js'

let wasmReady = false
function ensureWasm (): void {
  if (!wasmReady) {
    hdr.initWebAssemblySync()
    wasmReady = true
  }
}

/** Values from 1 to one hour in microseconds (or ~3.6 s in ns) at 3 significant digits. */
const HIGHEST_TRACKABLE = 3_600_000_000
const SIGNIFICANT_DIGITS = 3

export type EncodedHistograms = Readonly<Record<string, string>>

export class HistogramSet {
  readonly #histograms = new Map<string, hdr.Histogram>()

  constructor () {
    ensureWasm()
  }

  #get (name: string): hdr.Histogram {
    let h = this.#histograms.get(name)
    if (h === undefined) {
      h = hdr.build({
        useWebAssembly: true,
        lowestDiscernibleValue: 1,
        highestTrackableValue: HIGHEST_TRACKABLE,
        numberOfSignificantValueDigits: SIGNIFICANT_DIGITS
      })
      this.#histograms.set(name, h)
    }
    return h
  }

  /**
   * Records one value (clamped to [0, highest trackable]); fractional values are rounded. NaN is not a measurement
   * and is ignored (the WebAssembly histogram would throw on it).
   */
  record (name: string, value: number): void {
    if (Number.isNaN(value)) return
    this.#get(name).recordValue(clamp(value))
  }

  /**
   * Records `count` occurrences of one value (a batch of rows that shared an arrival time). A count below 1 (or NaN)
   * records nothing; a fractional count is truncated.
   */
  recordMany (name: string, value: number, count: number): void {
    if (Number.isNaN(value) || !(count >= 1)) return
    this.#get(name).recordValueWithCount(clamp(value), Math.min(Math.floor(count), Number.MAX_SAFE_INTEGER))
  }

  names (): string[] {
    return [...this.#histograms.keys()].sort()
  }

  summary (name: string): LatencySummary | undefined {
    const h = this.#histograms.get(name)
    return h === undefined ? undefined : summarize(h)
  }

  summaries (): Record<string, LatencySummary> {
    const out: Record<string, LatencySummary> = {}
    for (const name of this.names()) {
      const h = this.#histograms.get(name)
      if (h !== undefined) out[name] = summarize(h)
    }
    return out
  }

  /** Compressed base64 per histogram, for a Stats message. */
  encode (): EncodedHistograms {
    const out: Record<string, string> = {}
    for (const [name, h] of this.#histograms) out[name] = hdr.encodeIntoCompressedBase64(h)
    return out
  }

  /** Adds histograms encoded by another thread's `encode()`. */
  addEncoded (encoded: EncodedHistograms): void {
    for (const [name, text] of Object.entries(encoded)) {
      const other = hdr.decodeFromCompressedBase64(text, 32, true)
      try {
        this.#get(name).add(other)
      } finally {
        other.destroy()
      }
    }
  }

  reset (): void {
    for (const h of this.#histograms.values()) h.reset()
  }

  /** Frees the WebAssembly memory. The set must not be used afterwards. */
  destroy (): void {
    for (const h of this.#histograms.values()) h.destroy()
    this.#histograms.clear()
  }
}

function clamp (value: number): number {
  return value <= 0 ? 0 : value >= HIGHEST_TRACKABLE ? HIGHEST_TRACKABLE : Math.round(value)
}

function summarize (h: hdr.Histogram): LatencySummary {
  const count = h.totalCount
  if (count === 0) return { count: 0, min: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 }
  return {
    count,
    min: h.minNonZeroValue === Number.MAX_SAFE_INTEGER ? 0 : Math.min(h.minNonZeroValue, h.getValueAtPercentile(0)),
    // A percentile is the highest value equivalent to its bucket, which can exceed the largest value recorded.
    p50: Math.min(h.getValueAtPercentile(50), h.maxValue),
    p90: Math.min(h.getValueAtPercentile(90), h.maxValue),
    p99: Math.min(h.getValueAtPercentile(99), h.maxValue),
    p999: Math.min(h.getValueAtPercentile(99.9), h.maxValue),
    max: h.maxValue
  }
}
