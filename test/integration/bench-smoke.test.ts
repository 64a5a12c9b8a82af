import t from 'tap'
import { runBenchmarks, BENCHMARKS } from '../../bench/run.js'
import { privateCaRepeater } from '../support/ca-repeater.js'

// Keeps the benchmarks from rotting: every one runs on its quick workload and reports in the fixed shape, with its
// peers and limits. Speed is not checked here (bench/README.md); only shape and sanity.
t.test('npm run bench -- --quick: every benchmark reports ours, peer or limit, and its targets', async t => {
  await privateCaRepeater(t) // bench ca uses libca: keep its repeater on a free port, inside this test
  const lines: string[] = []
  const report = await runBenchmarks([], true, (s) => lines.push(s))
  t.equal(report.schema, 'tst-fly-bench/1')
  t.same(report.results.map((r) => r.name), BENCHMARKS.map((b) => b.name))
  t.same(BENCHMARKS.map((b) => b.name), ['ring', 'panda-parse', 'replay', 'engine', 'ca', 'panda-live', 'analysis', 'flyscan'])
  for (const r of report.results) {
    t.ok(r.measurements.length > 0, `${r.name} has measurements`)
    t.ok(r.measurements.some((m) => m.role === 'ours'), `${r.name} measures ours`)
    t.ok(r.measurements.some((m) => m.role === 'peer' || m.role === 'limit'), `${r.name} has a peer or a limit`)
    for (const m of r.measurements) {
      t.ok(Number.isFinite(m.median) && m.median > 0, `${r.name} ${m.subject} ${m.metric} is a positive number (${m.median})`)
    }
    t.ok(r.targets.length > 0, `${r.name} states its targets`)
    for (const target of r.targets) t.ok(target.actual !== undefined, `${r.name} target ${target.subject} ${target.metric} has a measurement`)
    const printed = lines.find((l) => l.startsWith(`== bench ${r.name}:`))
    t.ok(printed, `${r.name} printed its block`)
    t.match(printed, /subject +role +metric +median +min +max unit +runs/)
  }
  t.ok(report.results.find((r) => r.name === 'replay')?.latency['e2e.arrival_to_disk_us'], 'replay reports end-to-end latency')
})
