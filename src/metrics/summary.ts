/**
 * The one shape every latency summary has, at runtime and in bench/: count, min, p50, p90, p99, p99.9, max, all in
 * the unit the histogram's name ends with (`_us`, `_ns`, `_ms`).
 */
export interface LatencySummary {
  readonly count: number
  readonly min: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly p999: number
  readonly max: number
}

export const SUMMARY_KEYS = ['count', 'min', 'p50', 'p90', 'p99', 'p999', 'max'] as const

/** The unit a histogram name ends with: `ring.handoff_us` → `us`. */
export function unitOf (name: string): string {
  const m = /_(ns|us|ms|s|bytes|rows)$/.exec(name)
  return m?.[1] ?? ''
}

function fmt (v: number): string {
  if (!Number.isFinite(v)) return String(v)
  if (Number.isInteger(v)) return String(v)
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)
}

/** A fixed-shape text table, one line per histogram, names sorted. */
export function formatSummaries (summaries: Readonly<Record<string, LatencySummary>>): string {
  const names = Object.keys(summaries).sort()
  const width = Math.max(24, ...names.map((n) => n.length))
  const head = ['stage'.padEnd(width), ...SUMMARY_KEYS.map((k) => (k === 'p999' ? 'p99.9' : k).padStart(9))].join(' ')
  const lines = [head]
  for (const name of names) {
    const s = summaries[name]
    if (s === undefined) continue
    lines.push([name.padEnd(width), ...SUMMARY_KEYS.map((k) => fmt(s[k]).padStart(9))].join(' '))
  }
  return lines.join('\n')
}

/** Prometheus text exposition: one summary per histogram, quantiles as labels. */
export function toPrometheus (summaries: Readonly<Record<string, LatencySummary>>, prefix = 'tst_fly'): string {
  const out: string[] = []
  for (const name of Object.keys(summaries).sort()) {
    const s = summaries[name]
    if (s === undefined) continue
    const metric = `${prefix}_${name.replace(/[^a-zA-Z0-9_]/g, '_')}`
    out.push(`# TYPE ${metric} summary`)
    for (const [q, v] of [['0.5', s.p50], ['0.9', s.p90], ['0.99', s.p99], ['0.999', s.p999]] as const) {
      out.push(`${metric}{quantile="${q}"} ${v}`)
    }
    out.push(`${metric}_count ${s.count}`)
  }
  return out.join('\n') + '\n'
}
