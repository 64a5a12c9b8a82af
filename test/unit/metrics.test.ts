// HistogramSet (HDR, 3 significant digits) against known distributions, its encode/merge, and the fixed shapes of
// summaries, the text table and the Prometheus exposition.
import t, { type Test } from 'tap'
import {
  HistogramSet, SUMMARY_KEYS, formatSummaries, toPrometheus, unitOf, type LatencySummary
} from '../../src/metrics/index.js'

/** HDR at 3 significant digits: a reported value is within 1/1000 of the true one (plus one unit of rounding). */
function near (t: Tap, actual: number | undefined, expected: number, what: string): void {
  const tol = Math.max(1, expected / 1000)
  t.ok(actual !== undefined && Math.abs(actual - expected) <= tol, `${what}: ${String(actual)} ≈ ${expected} (±${tol})`)
}
type Tap = Test

function sets (t: Tap, n = 1): HistogramSet[] {
  const out = Array.from({ length: n }, () => new HistogramSet())
  t.teardown(() => { for (const s of out) s.destroy() })
  return out
}

t.test('uniform 1..100000: percentiles within 3 significant digits, exact count, min and max', async (t) => {
  const [s] = sets(t)
  if (s === undefined) return
  for (let v = 1; v <= 100_000; v++) s.record('uniform_us', v)
  const sum = s.summary('uniform_us')
  t.ok(sum !== undefined)
  if (sum === undefined) return
  t.equal(sum.count, 100_000)
  t.equal(sum.min, 1)
  t.equal(sum.max, 100_000)
  near(t, sum.p50, 50_000, 'p50')
  near(t, sum.p90, 90_000, 'p90')
  near(t, sum.p99, 99_000, 'p99')
  near(t, sum.p999, 99_900, 'p99.9')
  t.ok(sum.min <= sum.p50 && sum.p50 <= sum.p90 && sum.p90 <= sum.p99 && sum.p99 <= sum.p999 && sum.p999 <= sum.max,
    'ordered')
})

t.test('a skewed distribution: 99% fast, 1% slow', async (t) => {
  const [s] = sets(t)
  if (s === undefined) return
  s.recordMany('skew_ns', 200, 9900)
  s.recordMany('skew_ns', 5_000_000, 100)
  const sum = s.summary('skew_ns')
  t.equal(sum?.count, 10_000)
  near(t, sum?.p50, 200, 'p50')
  near(t, sum?.p99, 200, 'p99 (the 9900th value is still fast)')
  near(t, sum?.p999, 5_000_000, 'p99.9')
  t.equal(sum?.max, 5_000_000)
})

t.test('recordMany counts every occurrence; fractional values are rounded', async (t) => {
  const [s] = sets(t)
  if (s === undefined) return
  s.recordMany('batch_us', 10, 1000)
  s.recordMany('batch_us', 20, 3000)
  s.record('batch_us', 29.6)
  const sum = s.summary('batch_us')
  t.equal(sum?.count, 4001)
  t.equal(sum?.min, 10)
  t.equal(sum?.p50, 20)
  t.equal(sum?.max, 30, '29.6 recorded as 30')
  t.equal(s.summary('missing_us'), undefined)
})

t.test('recordMany with a count below 1 or NaN records nothing (and does not move max)', async (t) => {
  const [s] = sets(t)
  if (s === undefined) return
  s.record('c_us', 5)
  s.recordMany('c_us', 1000, 0)
  s.recordMany('c_us', 1000, -3)
  s.recordMany('c_us', 1000, Number.NaN)
  s.recordMany('c_us', 7, 2.9)
  t.match(s.summary('c_us'), { count: 3, min: 5, max: 7 })
})

t.test('negative, huge, infinite and NaN values: clamped or ignored, never a throw', async (t) => {
  const [s] = sets(t)
  if (s === undefined) return
  s.record('clamp_ns', -5)
  s.record('clamp_ns', Number.NEGATIVE_INFINITY)
  s.record('clamp_ns', 1e15)
  s.record('clamp_ns', Number.POSITIVE_INFINITY)
  s.record('clamp_ns', Number.NaN)
  s.recordMany('clamp_ns', Number.NaN, 10)
  const sum = s.summary('clamp_ns')
  t.equal(sum?.count, 4, 'NaN is not counted')
  t.equal(sum?.min, 0, 'negative values are recorded as 0')
  t.equal(sum?.max, 3_600_000_000, 'huge values are recorded as the highest trackable value')
  for (const k of ['p50', 'p90', 'p99', 'p999'] as const) {
    t.ok((sum?.[k] ?? Infinity) <= (sum?.max ?? 0), `${k} ${String(sum?.[k])} does not exceed max`)
  }
})

t.test('encode → addEncoded merge equals recording everything in one set', async (t) => {
  const [a, b, merged, all] = sets(t, 4)
  if (a === undefined || b === undefined || merged === undefined || all === undefined) return
  // Two threads' worth: a gets 1..50000 and a tail, b gets 50001..100000, and only b has parse_ns.
  for (let v = 1; v <= 50_000; v++) { a.record('ring_us', v); all.record('ring_us', v) }
  a.recordMany('ring_us', 2_000_000, 5); all.recordMany('ring_us', 2_000_000, 5)
  for (let v = 50_001; v <= 100_000; v++) { b.record('ring_us', v); all.record('ring_us', v) }
  for (let v = 1; v <= 1000; v++) { b.record('parse_ns', v * 7); all.record('parse_ns', v * 7) }
  const encoded = [a.encode(), b.encode()]
  t.same(Object.keys(encoded[0] ?? {}), ['ring_us'])
  t.match(encoded[1], { ring_us: String, parse_ns: String }, 'one compressed base64 string per histogram')
  for (const e of encoded) merged.addEncoded(structuredClone(e))
  t.same(merged.names(), ['parse_ns', 'ring_us'])
  for (const name of ['ring_us', 'parse_ns']) {
    const m = merged.summary(name)
    const o = all.summary(name)
    t.equal(m?.count, o?.count, `${name}: counts equal`)
    for (const k of SUMMARY_KEYS) {
      if (k !== 'count') near(t, m?.[k], o?.[k] ?? NaN, `${name} ${k}`)
    }
  }
  t.equal(merged.summary('ring_us')?.count, 100_005)
  near(t, merged.summary('ring_us')?.p50, 50_000, 'merged p50')
  near(t, merged.summary('ring_us')?.max, 2_000_000, 'merged max')
  // Adding the same encoding again doubles the count: merging is addition, not replacement.
  merged.addEncoded(encoded[0] ?? {})
  t.equal(merged.summary('ring_us')?.count, 100_005 + 50_005)
})

t.test('summaries: one fixed shape, keys in a fixed order, names sorted; reset and destroy', async (t) => {
  const [s] = sets(t)
  if (s === undefined) return
  s.record('zeta_ms', 3)
  s.record('alpha_us', 1)
  s.record('mid_ns', 2)
  const all = s.summaries()
  t.same(Object.keys(all), ['alpha_us', 'mid_ns', 'zeta_ms'])
  t.same(SUMMARY_KEYS, ['count', 'min', 'p50', 'p90', 'p99', 'p999', 'max'])
  for (const sum of Object.values(all)) {
    t.same(Object.keys(sum), [...SUMMARY_KEYS], 'key order is the SUMMARY_KEYS order')
    for (const k of SUMMARY_KEYS) t.type(sum[k], 'number')
  }
  t.same(all.mid_ns, { count: 1, min: 2, p50: 2, p90: 2, p99: 2, p999: 2, max: 2 })
  s.reset()
  t.same(s.summary('mid_ns'), { count: 0, min: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 }, 'empty is all zeros')
  t.same(s.names(), ['alpha_us', 'mid_ns', 'zeta_ms'], 'reset keeps the names')
  s.destroy()
  t.same(s.names(), [])
  t.same(s.summaries(), {})
})

const SAMPLE: Record<string, LatencySummary> = {
  'ring.handoff_us': { count: 100, min: 1, p50: 2.5, p90: 12.25, p99: 150.4, p999: 1000, max: 1234 },
  'a-very-long-histogram-name-for-parse_ns': { count: 3, min: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 },
  disk_ms: { count: 0, min: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 }
}

t.test('formatSummaries: a header and one line per name, sorted, in fixed columns', async (t) => {
  const text = formatSummaries(SAMPLE)
  const lines = text.split('\n')
  t.equal(lines.length, 4)
  const width = 'a-very-long-histogram-name-for-parse_ns'.length
  const cols = ['count', 'min', 'p50', 'p90', 'p99', 'p99.9', 'max']
  t.equal(lines[0], ['stage'.padEnd(width), ...cols.map((c) => c.padStart(9))].join(' '))
  t.same(lines.slice(1).map((l) => l.split(/\s+/)[0]), ['a-very-long-histogram-name-for-parse_ns', 'disk_ms', 'ring.handoff_us'])
  t.equal(lines[3], ['ring.handoff_us'.padEnd(width), ...['100', '1', '2.50', '12.3', '150', '1000', '1234'].map((c) => c.padStart(9))].join(' '),
    'integers as is, fractions with 2/1/0 decimals by magnitude')
  for (const line of lines) t.equal(line.length, width + 7 * 10, 'every line has the same width')
  const short = formatSummaries({ x_us: { count: 1, min: 1, p50: 1, p90: 1, p99: 1, p999: 1, max: 1 } })
  t.equal(short.split('\n')[0]?.indexOf('count'), 24 + 1 + 4, 'the name column is at least 24 wide')
  t.equal(formatSummaries({}).split('\n').length, 1, 'no histograms: the header alone')
})

t.test('toPrometheus: one summary per histogram with quantile labels and a count', async (t) => {
  const text = toPrometheus(SAMPLE)
  t.ok(text.endsWith('\n'))
  const lines = text.trimEnd().split('\n')
  t.equal(lines.length, 3 * 6)
  t.same(lines.slice(12), [
    '# TYPE tst_fly_ring_handoff_us summary',
    'tst_fly_ring_handoff_us{quantile="0.5"} 2.5',
    'tst_fly_ring_handoff_us{quantile="0.9"} 12.25',
    'tst_fly_ring_handoff_us{quantile="0.99"} 150.4',
    'tst_fly_ring_handoff_us{quantile="0.999"} 1000',
    'tst_fly_ring_handoff_us_count 100'
  ])
  t.equal(lines[0], '# TYPE tst_fly_a_very_long_histogram_name_for_parse_ns summary', 'names sorted and sanitized')
  for (const line of lines) {
    t.match(line, /^(# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* summary|[a-zA-Z_:][a-zA-Z0-9_:]*(\{quantile="[0-9.]+"\})? -?[0-9.e+]+)$/,
      'a valid exposition line')
  }
  t.match(toPrometheus(SAMPLE, 'bench'), /^# TYPE bench_a_very/)
})

t.test('unitOf: the unit suffix of a histogram name', async (t) => {
  const cases: Array<[string, string]> = [
    ['ring.handoff_us', 'us'], ['parse_ns', 'ns'], ['flush_ms', 'ms'], ['scan_s', 's'], ['block_bytes', 'bytes'],
    ['batch_rows', 'rows'], ['count', ''], ['latency_sec', ''], ['us_total', ''], ['x_us_count', ''], ['', '']
  ]
  for (const [name, unit] of cases) t.equal(unitOf(name), unit, `unitOf(${JSON.stringify(name)})`)
})
