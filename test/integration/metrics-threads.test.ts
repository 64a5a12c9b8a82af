// Per-thread histograms merged by the supervisor: two real worker threads record known values into their own
// HistogramSet, answer a stats request with encode(), and the main thread adds both encodings.
import t from 'tap'
import { HistogramSet } from '../../src/metrics/index.js'
import { WorkerHandle } from '../../src/protocol/index.js'
import type { FixtureDown, FixtureUp } from '../fixtures/workers/fixture-protocol.js'
import { trackLeaks } from '../support/leaks.js'

const RECORDER = new URL('../fixtures/workers/histogram-recorder.js', import.meta.url)

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

t.test('two recorder threads: the merged histogram has the combined count and percentiles', async (t) => {
  trackLeaks(t)
  const inputs = [range(1, 50_000), [...range(50_001, 100_000), 3_000_000]]
  const handles = inputs.map((values, i) => {
    const h = new WorkerHandle<FixtureUp, FixtureDown>({
      name: `histogram-recorder-${i}`,
      url: RECORDER,
      workerData: { kind: 'histogram-recorder', name: 'ring.handoff_us', values },
      readyTimeoutMs: 15_000,
      closeTimeoutMs: 5000
    })
    t.teardown(() => h.destroy('test teardown'))
    return h
  })
  await Promise.all(handles.map((h) => h.ready))
  const replies = await Promise.all(handles.map((h, i) => h.request({ kind: 'stats', id: 10 + i }, 'stats', 15_000)))
  t.same(replies.map((r) => r.id), [10, 11])

  const merged = new HistogramSet()
  const local = new HistogramSet()
  t.teardown(() => { merged.destroy(); local.destroy() })
  for (const r of replies) {
    t.same(Object.keys(r.histograms), ['ring.handoff_us'], 'each thread sent its one histogram')
    merged.addEncoded(r.histograms)
  }
  for (const v of inputs.flat()) local.record('ring.handoff_us', v)

  const m = merged.summary('ring.handoff_us')
  const l = local.summary('ring.handoff_us')
  t.equal(m?.count, 100_001, 'counts add up')
  const within = (actual: number | undefined, expected: number, what: string): void => {
    const tol = Math.max(1, expected / 1000)
    t.ok(actual !== undefined && Math.abs(actual - expected) <= tol, `${what}: ${String(actual)} ≈ ${expected}`)
  }
  within(m?.p50, 50_000, 'p50 spans both threads')
  within(m?.p90, 90_000, 'p90 comes from the second thread')
  within(m?.p999, 99_900, 'p99.9')
  within(m?.max, 3_000_000, 'max is the second thread\'s outlier')
  within(m?.min, 1, 'min is the first thread\'s smallest value')
  for (const k of ['p50', 'p90', 'p99', 'p999', 'max'] as const) within(m?.[k], l?.[k] ?? NaN, `merged ${k} = single-set ${k}`)

  await Promise.all(handles.map((h) => h.close({ kind: 'close' })))
  await Promise.all(handles.map((h) => h.done))
})
