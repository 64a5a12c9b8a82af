import t from 'tap'
import type { FrameCounters } from '../../src/devices/index.js'
import {
  TimingMonitor, cameraStallTimeout, pandaStallTimeout, stallError,
  type CameraExpectation, type PandaExpectation, type TimingExpectations
} from '../../src/fly/timing.js'

// The TimingMonitor in virtual time: `clock.t` is advanced by hand, nothing waits.

const clock = { t: 0, now () { return this.t } }

function counters (received: number, more: Partial<FrameCounters> = {}): FrameCounters {
  return {
    received,
    written: received,
    dropped: 0,
    uniqueIdGaps: 0,
    firstUniqueId: received > 0 ? 1 : undefined,
    lastUniqueId: received > 0 ? received : undefined,
    bytesWritten: 0,
    ...more
  }
}

// manta1: livetime 0.01 s, deadtime 63 µs, margin 1 s → 1011 ms.
const stall = cameraStallTimeout({ numberOfEvents: 721, trigger: 'edge_trigger', livetime: 0.01 }, 0.000063, 1000)
const manta: CameraExpectation = { name: 'manta1', expectedFrames: 721, firstFrameTimeoutMs: 4000, ...stall }
const panda: PandaExpectation = {
  name: 'panda1', expectedRows: 721, rowTolerance: 0, nominalTriggerPeriodS: 0.05, ...pandaStallTimeout(0.05, 1000, 2000)
}

function monitor (over: Partial<TimingExpectations> = {}): TimingMonitor {
  clock.t = 1000
  return new TimingMonitor({ cameras: [manta], panda, framesPerRow: { extraAllowed: 0 }, startMs: 1000, clock, ...over })
}

t.test('the stall timeouts and what they are made of', async t => {
  t.same(stall, { stallTimeoutMs: 1011, stallTimeoutBasis: 'livetime 0.01 + deadtime 0.000063 + margin 1' })
  t.same(pandaStallTimeout(0.05, 1000, 2000), { stallTimeoutMs: 3050, stallTimeoutBasis: 'trigger period 0.05 + flush period 1 + margin 2' })
})

t.test('nothing stalls before kickoff, however long the wait', async t => {
  const m = monitor()
  m.armed()
  clock.t += 60_000
  t.equal(m.check(), undefined)
})

t.test('a camera with no frame after kickoff stalls after its first-frame timeout, naming what else is known', async t => {
  const m = monitor({ panda: { ...panda, stallTimeoutMs: 60_000 } })
  m.kickedOff()
  m.rows('panda1', 3)
  m.motor(12.5)
  m.arrayCounter('manta1', 0)
  clock.t += 4000
  t.equal(m.check(), undefined, 'exactly at the bound is not past it')
  clock.t += 1
  const s = m.check()
  t.same(s, {
    device: 'manta1',
    what: 'camera',
    reason: "manta1: no frame 4 s after kickoff (first-frame timeout 4 s); panda1 has 3 rows; the motor is at 12.5; the camera's ArrayCounter is 0"
  })
  t.equal(m.check(clock.t + 100_000), s, 'the first stall found is kept')
  const err = stallError(s as NonNullable<typeof s>)
  t.match(err, { code: 'FLY_ERR_STALLED', message: /^manta1: no frame/, details: { device: 'manta1', what: 'camera' } })
  const r = m.report()
  t.equal(r.verdict, 'stalled')
  t.equal(r.problems[0], s?.reason)
})

t.test('a camera that stops after some frames stalls after its stall timeout, with the counts in the reason', async t => {
  const m = monitor()
  m.kickedOff()
  for (let i = 1; i <= 57; i++) {
    clock.t += 50
    m.camera('manta1', counters(i))
    m.arrayCounter('manta1', i)
    m.rows('panda1', i + 4)
    t.equal(m.check(), undefined)
  }
  // Polls go on; the counts do not move.
  clock.t += 1000
  m.camera('manta1', counters(57))
  t.equal(m.check(), undefined, '1.0 s < 1.011 s')
  clock.t += 300
  const s = m.check()
  t.equal(s?.reason, 'manta1: no frame for 1.3 s (stall timeout 1.01 s = livetime 0.01 + deadtime 0.000063 + margin 1) ' +
    "after 57 of 721; panda1 has 61 rows; the camera's ArrayCounter is 57")
})

t.test('a camera whose frames arrive before kickoff still gets its first-frame timeout after it', async t => {
  const m = monitor()
  m.camera('manta1', counters(2))
  clock.t += 5000
  m.kickedOff()
  clock.t += 2000
  t.equal(m.check(), undefined, '2 s < the 4 s first-frame timeout, not the 1 s stall timeout')
  m.camera('manta1', counters(3))
  clock.t += 1012
  t.match(m.check(), { device: 'manta1', reason: /no frame for 1.01 s .* after 3 of 721/ })
})

t.test('the PandA stalls when no row reaches the disk for its stall timeout, or after kickoff for its first-row timeout', async t => {
  const m = monitor({ cameras: [] })
  m.kickedOff()
  clock.t += 3051
  t.match(m.check(), { device: 'panda1', what: 'panda', reason: 'panda1: no row on disk 3.05 s after kickoff (first-row timeout 3.05 s)' })

  const m2 = monitor({ cameras: [{ ...manta, firstFrameTimeoutMs: 60_000, stallTimeoutMs: 60_000 }], panda: { ...panda, firstRowTimeoutMs: 10_000 } })
  m2.kickedOff()
  clock.t += 9000
  t.equal(m2.check(), undefined)
  m2.rows('panda1', 61)
  m2.camera('manta1', counters(57))
  clock.t += 3051
  t.equal(m2.check()?.reason, 'panda1: no row on disk for 3.05 s (stall timeout 3.05 s = trigger period 0.05 + flush period 1 + margin 2) ' +
    'after 61 of 721 rows; manta1 has 57 of 721 frames')
})

t.test('a device that reached its expected count, or said it is done, never stalls', async t => {
  const m = monitor({ panda: { ...panda, rowTolerance: 1 } })
  m.kickedOff()
  m.camera('manta1', counters(721))
  m.rows('panda1', 720)
  clock.t += 3_600_000
  t.equal(m.check(), undefined, '721 of 721 frames; 720 rows is within 721 ± 1')

  const m2 = monitor({ cameras: [{ ...manta, expectedFrames: 0 }], panda: { ...panda, expectedRows: undefined } })
  m2.kickedOff()
  m2.camera('manta1', counters(10))
  m2.rows('panda1', 10)
  m2.done('manta1')
  m2.done('panda1')
  clock.t += 3_600_000
  t.equal(m2.check(), undefined, 'unknown counts: done() is what ends them')
  m2.ended()
  t.equal(m2.check(), undefined)
})

t.test('nothing stalls after the end', async t => {
  const m = monitor()
  m.kickedOff()
  m.ended('abort')
  clock.t += 3_600_000
  t.equal(m.check(), undefined)
})

t.test('inputs for an unknown device, and bad expectations, are coded errors naming them', async t => {
  const m = monitor()
  t.throws(() => m.camera('manta2', counters(1)), { code: 'FLY_ERR_BAD_INPUT', message: 'TimingMonitor: no device named manta2 (known: manta1, panda1)' })
  t.throws(() => m.rows('manta1', 1), { code: 'FLY_ERR_BAD_INPUT', message: 'TimingMonitor: manta1 is a camera, not the PandA (panda1)' })
  t.throws(() => m.arrayCounter('panda1', 1), { code: 'FLY_ERR_BAD_INPUT', message: /no device named panda1/ })
  t.throws(() => monitor({ cameras: [manta, manta] }), { message: /device name manta1 is given twice/ })
  t.throws(() => monitor({ cameras: [{ ...manta, stallTimeoutMs: Number.NaN }] }), { message: /manta1: stallTimeoutMs must be a number >= 0 \(got NaN\)/ })
})

// ---- verdicts -----------------------------------------------------------------------------------------------------

/** A scan that went to its end with these numbers. */
function finished (frames: FrameCounters, rows: number, arrayCounter: number | undefined, over: Partial<TimingExpectations> = {}, status: 'success' | 'abort' = 'success') {
  const m = monitor(over)
  m.armed()
  m.kickedOff()
  clock.t += 36_000
  m.camera('manta1', frames)
  if (arrayCounter !== undefined) m.arrayCounter('manta1', arrayCounter)
  m.rows('panda1', rows)
  m.ended(status)
  return m.report()
}

t.test('ok: every frame and row, no gap', async t => {
  const r = finished(counters(721), 721, 721)
  t.same(r, {
    verdict: 'ok',
    problems: [],
    durationS: 36,
    cameras: [{ name: 'manta1', expected: 721, received: 721, written: 721, dropped: 0, uniqueIdGaps: 0, arrayCounter: 721, firstUniqueId: 1, lastUniqueId: 721 }],
    panda: { name: 'panda1', expectedRows: 721, rows: 721, rowTolerance: 0 },
    framesVsRows: { camera: 'manta1', frames: 721, rows: 721, extraAllowed: 0, ok: true },
    tsTrig: null
  })
  t.same(JSON.parse(JSON.stringify(r)), r, 'JSON-able, every key kept')
})

t.test('frames-dropped: ring drops, UniqueId gaps, ArrayCounter ahead, too few received, received but not written', async t => {
  t.same(finished(counters(721, { dropped: 3, written: 718 }), 721, 721).problems,
    ['manta1: 3 of 721 frames received were dropped (frame ring full)'])
  const gaps = finished(counters(719, { uniqueIdGaps: 2, lastUniqueId: 721 }), 721, 721, { framesPerRow: undefined })
  t.equal(gaps.verdict, 'frames-dropped')
  t.same(gaps.problems, [
    'manta1: 2 frames missing by UniqueId between 1 and 721 (719 received)',
    'manta1: received 719 of 721 frames expected',
    "manta1: the camera's ArrayCounter is 721 but 719 frames were received"
  ])
  t.same(finished(counters(721, { written: 700 }), 721, 721).problems, ['manta1: 721 frames received but only 700 written and 0 dropped'])
  const r = finished(counters(720), 720, 720)
  t.equal(r.verdict, 'frames-dropped', 'a missing frame outranks the row count')
  t.same(r.problems, ['manta1: received 720 of 721 frames expected', 'panda1: 720 rows captured, 721 expected'])
})

t.test('rows-mismatch: rows outside the tolerance, frames against rows outside [0, extra]', async t => {
  const over = { panda: { ...panda, rowTolerance: 1 }, framesPerRow: { extraAllowed: 1 } }
  t.equal(finished(counters(721), 720, 721, over).verdict, 'ok', '720 is within 721 ± 1, one frame more than rows is allowed')
  const few = finished(counters(721), 719, 721, over)
  t.equal(few.verdict, 'rows-mismatch')
  t.same(few.problems, ['panda1: 719 rows captured, 721 ± 1 expected', 'manta1: 721 frames for 719 PandA rows: 2 more frames than rows, at most 1 allowed'])
  t.same(few.framesVsRows, { camera: 'manta1', frames: 721, rows: 719, extraAllowed: 1, ok: false })

  // A layout whose trigger also runs before PCAP captures (e.g. a run-up): up to 5 extra frames allowed.
  const xas = { cameras: [{ ...manta, expectedFrames: 725 }], framesPerRow: { extraAllowed: 5 } }
  t.equal(finished(counters(725), 721, 725, xas).verdict, 'ok')
  t.same(finished(counters(727), 721, 727, { ...xas, cameras: [{ ...manta, expectedFrames: 0 }] }).problems,
    ['manta1: 727 frames for 721 PandA rows: 6 more frames than rows, at most 5 allowed'])
  t.same(finished(counters(725), 726, 725, { ...xas, panda: { ...panda, expectedRows: undefined } }).problems,
    ['manta1: 725 frames for 726 PandA rows: 1 triggers made a row but no frame'])
})

t.test('with several cameras, frames against rows reports the one farthest out of range', async t => {
  const m = monitor({ cameras: [manta, { ...manta, name: 'manta2' }] })
  m.kickedOff()
  m.camera('manta1', counters(721))
  m.camera('manta2', counters(721, { received: 716, written: 716 }))
  m.rows('panda1', 721)
  m.ended()
  const r = m.report()
  t.same(r.framesVsRows, { camera: 'manta2', frames: 716, rows: 721, extraAllowed: 0, ok: false })
  t.same(r.problems, ['manta2: received 716 of 721 frames expected', 'manta2: 716 frames for 721 PandA rows: 5 triggers made a row but no frame'])
})

t.test('incomplete: aborted or not ended; shortfalls are then not called drops, but real drops still are', async t => {
  const aborted = finished(counters(100), 100, 102, {}, 'abort')
  t.equal(aborted.verdict, 'incomplete')
  t.same(aborted.problems, ['the scan ended with exit status abort 36 s after kickoff: manta1 has 100 of 721 frames, panda1 has 100 of 721 rows'])

  const m = monitor()
  clock.t += 500
  const r = m.report()
  t.equal(r.verdict, 'incomplete')
  t.same(r.problems, ['the scan has not ended before kickoff: manta1 has 0 of 721 frames, panda1 has 0 of 721 rows'])
  t.equal(r.durationS, 0.5)

  const dropped = finished(counters(100, { dropped: 1, written: 99 }), 100, 100, {}, 'abort')
  t.equal(dropped.verdict, 'frames-dropped')
  t.equal(dropped.problems.length, 2)

  const tooMany = finished(counters(100), 722, 100, {}, 'abort')
  t.equal(tooMany.verdict, 'rows-mismatch', 'more rows than expected is a mismatch even when the scan stopped early')
})

t.test('TS_TRIG: the summary with the nominal period and jitter = p99 − p50; null when none was recorded', async t => {
  const m = monitor()
  m.kickedOff()
  m.tsTrig({ count: 720, min: 49_990, p50: 50_000, p90: 50_003, p99: 50_011, p999: 50_020, max: 50_031 })
  m.ended()
  t.same(m.report().tsTrig, { count: 720, nominalUs: 50_000, p50: 50_000, p90: 50_003, p99: 50_011, p999: 50_020, max: 50_031, min: 49_990, jitterUs: 11 })
  m.tsTrig({ count: 0, min: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 })
  t.equal(m.report().tsTrig, null)
  const noNominal = monitor({ panda: { ...panda, nominalTriggerPeriodS: undefined } })
  noNominal.tsTrig({ count: 1, min: 7, p50: 7, p90: 7, p99: 7, p999: 7, max: 7 })
  t.equal(noNominal.report().tsTrig?.nominalUs, null)
})

t.test('no PandA: no rows, no frames-vs-rows, and the verdict comes from the cameras', async t => {
  const m = monitor({ panda: undefined, cameras: [{ ...manta, expectedFrames: 10 }] })
  m.kickedOff()
  m.camera('manta1', counters(10))
  m.ended()
  const r = m.report()
  t.equal(r.verdict, 'ok')
  t.equal(r.panda, null)
  t.equal(r.framesVsRows, null)
})
