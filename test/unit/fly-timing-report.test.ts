import t from 'tap'
import type { TimingReport } from '../../src/fly/timing.js'
import { formatTimingReport } from '../../src/fly/timing-report.js'

// The console form of the timing report: verdict first, one line per part, aligned, the same shape every time.

const ok: TimingReport = {
  verdict: 'ok',
  problems: [],
  durationS: 36.25,
  cameras: [{ name: 'manta1', expected: 721, received: 721, written: 721, dropped: 0, uniqueIdGaps: 0, arrayCounter: 721, firstUniqueId: 1, lastUniqueId: 721 }],
  panda: { name: 'panda1', expectedRows: 721, rows: 721, rowTolerance: 0 },
  framesVsRows: { camera: 'manta1', frames: 721, rows: 721, extraAllowed: 0, ok: true },
  tsTrig: { count: 720, nominalUs: 50_000, p50: 50_000, p90: 50_003, p99: 50_011, p999: 50_020, max: 50_031, min: 49_990, jitterUs: 11 }
}

t.test('a clean scan: verdict line, camera, PandA, frames against rows, TS_TRIG', async t => {
  t.equal(formatTimingReport(ok), [
    'timing    ok in 36.25 s, 0 problems',
    'manta1    frames 721 of 721 received, 721 written, 0 dropped, 0 UniqueId gaps, ArrayCounter 721',
    'panda1    rows 721 of 721 ± 0',
    'frames    721 frames (manta1) for 721 rows, up to 0 extra allowed: ok',
    'TS_TRIG   720 deltas µs: nominal 50000, p50 50000, p90 50003, p99 50011, p99.9 50020, min 49990, max 50031, jitter 11'
  ].join('\n'))
})

t.test('problems follow, one a line; parts not in the scan keep their line', async t => {
  const bad: TimingReport = {
    ...ok,
    verdict: 'stalled',
    problems: ['manta1: no frame for 1.3 s', 'the scan ended with exit status fail'],
    cameras: [{ ...ok.cameras[0] as TimingReport['cameras'][number], name: 'a-long-camera-name', expected: 0, arrayCounter: null }],
    panda: null,
    framesVsRows: null,
    tsTrig: null
  }
  const lines = formatTimingReport(bad).split('\n')
  t.same(lines, [
    'timing              stalled in 36.25 s, 2 problems',
    'a-long-camera-name  frames 721 of unknown received, 721 written, 0 dropped, 0 UniqueId gaps, ArrayCounter unknown',
    'panda               none',
    'frames              not compared with rows',
    'TS_TRIG             not captured',
    'problem             manta1: no frame for 1.3 s',
    'problem             the scan ended with exit status fail'
  ])
  const width = (lines[0] as string).indexOf('stalled')
  for (const l of lines) t.equal(l.slice(0, width).trimEnd().length < width && l[width - 1] === ' ', true, `aligned: ${l}`)
})

t.test('a frames-vs-rows mismatch is shouted, an unknown row count and nominal period say so', async t => {
  const text = formatTimingReport({
    ...ok,
    verdict: 'rows-mismatch',
    problems: ['x'],
    panda: { name: 'panda1', expectedRows: null, rows: 719, rowTolerance: 1 },
    framesVsRows: { camera: 'manta1', frames: 725, rows: 719, extraAllowed: 5, ok: false },
    tsTrig: { ...ok.tsTrig as NonNullable<TimingReport['tsTrig']>, nominalUs: null }
  })
  t.match(text, /^timing {4}rows-mismatch in 36.25 s, 1 problem\n/)
  t.match(text, /\npanda1 {4}rows 719 of unknown ± 1\n/)
  t.match(text, /\nframes {4}725 frames \(manta1\) for 719 rows, up to 5 extra allowed: MISMATCH\n/)
  t.match(text, /\nTS_TRIG {3}720 deltas µs: nominal unknown,/)
})
