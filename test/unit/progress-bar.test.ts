// The fly scan's progress bar (src/cli/progress.ts): the line's fields and shape, and how it is drawn on a terminal
// (redrawn in place) and elsewhere (whole lines, only when something changed, and a last one at the end).
import t from 'tap'
import { formatProgress, startProgressBar, type ProgressSample } from '../../src/cli/progress.js'

const sample = (over: Partial<ProgressSample> = {}): ProgressSample => ({ frames: 0, expectedFrames: 0, rows: 0, expectedRows: undefined, bytes: 0, elapsedS: 0, ...over })

t.test('the line: bar, percent, frames, rows, MB/s since kickoff, seconds', async t => {
  t.equal(formatProgress(sample({ frames: 377, expectedFrames: 721, rows: 377, expectedRows: 721, bytes: 187_000_000, elapsedS: 3.9 }), 10),
    '[#####-----]   52%  frames 377/721  rows 377/721  47.9 MB/s  3.9 s')
  t.equal(formatProgress(sample({ frames: 14, expectedFrames: 14, bytes: 5_500_000, elapsedS: 1 }), 4), '[####]  100%  frames 14/14  5.5 MB/s  1.0 s', 'no PandA: no rows')
  t.equal(formatProgress(sample({ rows: 50, expectedRows: 100, elapsedS: 0.5 }), 4), '[##--]   50%  rows 50/100  0.0 MB/s  0.5 s', 'no camera: no frames')
  t.equal(formatProgress(sample(), 4), '[----]    0%  0.0 MB/s  0.0 s', 'before kickoff')
  t.equal(formatProgress(sample({ frames: 30, expectedFrames: 20, elapsedS: 1 }), 4), '[####]  100%  frames 30/20  0.0 MB/s  1.0 s', 'never past 100%')
})

t.test('drawn as lines when not a terminal, in place on one', async t => {
  let s = sample({ frames: 1, expectedFrames: 4 })
  const lines: string[] = []
  const stop = startProgressBar({ sample: () => s, write: (x) => lines.push(x), tty: false, logPeriodMs: 10, width: 4 })
  await new Promise((resolve) => setTimeout(resolve, 60))
  s = sample({ frames: 4, expectedFrames: 4, elapsedS: 2 })
  stop()
  stop()
  t.equal(lines.filter((l) => l.startsWith('[#---]')).length, 1, 'an unchanged line is written once')
  t.equal(lines.at(-1), '[####]  100%  frames 4/4  0.0 MB/s  2.0 s\n', 'the final state, once, even when stop is called twice')
  const drawn: string[] = []
  const stopTty = startProgressBar({ sample: () => s, write: (x) => drawn.push(x), tty: true, periodMs: 10, width: 4 })
  await new Promise((resolve) => setTimeout(resolve, 40))
  stopTty()
  t.ok(drawn.length >= 2)
  t.ok(drawn.every((x) => x.startsWith('\r')), 'every draw returns to the start of the line')
  t.ok(drawn.at(-1)?.endsWith('\n'), 'the last draw ends the line')
})
