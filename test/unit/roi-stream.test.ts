import t from 'tap'
import { RoiStream, parseRois, pointEnergy } from '../../src/areadetector/index.js'
import { ErrorCode, FlyScanError } from '../../src/errors.js'
import type { RoiRow } from '../../src/protocol/index.js'

const COUNTERS = { submitted: 3, completed: 2, skipped: 1, failed: 0, inFlight: 0 }

t.test('parseRois: the ADVimba option', async t => {
  t.same(parseRois('spot:300,200,64,64; full:0,0,728,544;', 'manta1'), [
    { name: 'spot', x: 300, y: 200, width: 64, height: 64 },
    { name: 'full', x: 0, y: 0, width: 728, height: 544 }
  ])
  for (const [text, why] of [
    ['', /names no ROI/], ['spot', /no name/], ['spot:1,2,3', /3 numbers instead of 4/], ['spot:1,2,3,-4', /whole pixel numbers/],
    ['spot:1,2,0,4', /at least 1×1/], ['a b:1,2,3,4', /letters, digits/], ['s:0,0,1,1;s:1,1,1,1', /used twice/]
  ] as const) {
    let err: unknown
    try { parseRois(text, 'manta1') } catch (e) { err = e }
    t.ok(err instanceof FlyScanError && err.code === ErrorCode.BAD_INPUT && /ADVimba manta1/.test(err.message) && why.test(err.message),
      `'${text}' → ${String(why)} (got ${String(err)})`)
  }
})

t.test('RoiStream: keys, pages, energies, counters', async t => {
  const s = new RoiStream(() => 'manta1', parseRois('spot:0,0,2,2', 'manta1'))
  t.equal(s.name, 'manta1_roi')
  t.equal(s.bound, false)
  s.bind()
  t.equal(s.bound, true)
  t.throws(() => s.validate(1, 1), /manta1: rois: .*spot/)
  s.validate(4, 4)
  const axis = { startE: 0, endE: -4, npoints: 400 }
  s.prepare(axis)
  t.same(Object.keys(await s.describeCollect()).sort(), ['manta1_roi_energy', 'manta1_roi_frame', 'manta1_roi_spot_cx', 'manta1_roi_spot_cy',
    'manta1_roi_spot_max', 'manta1_roi_spot_mean', 'manta1_roi_spot_sum', 'manta1_roi_unique_id'])
  const stat = { name: 'spot', sum: 10, mean: 2.5, max: 4, min: 1, centroidX: 0.5, centroidY: 0.7, pixels: 4 }
  const rows: RoiRow[] = [0, 2].map((frame) => ({ frame, uniqueId: 100 + frame, epicsSec: 0, epicsNsec: 0, receivedS: 5 + frame, stats: [stat] }))
  s.push(rows, COUNTERS)
  const pages = []
  for await (const p of s.collectPages()) pages.push(p)
  t.equal(pages.length, 1)
  const page = pages[0]
  t.same(page?.data.manta1_roi_frame, [0, 2])
  t.same(page?.data.manta1_roi_unique_id, [100, 102])
  t.same(page?.data.manta1_roi_energy, [pointEnergy(axis, 0), pointEnergy(axis, 2)])
  t.equal(pointEnergy(axis, 0), -0.005)
  t.same(page?.data.manta1_roi_spot_sum, [10, 10])
  t.same(page?.data.manta1_roi_spot_cy, [0.7, 0.7])
  t.same(page?.time, [5, 7])
  t.same(s.counters(), { ...COUNTERS, rows: 2 })
  for await (const p of s.collectPages()) t.fail(`nothing new, yet a page: ${JSON.stringify(p)}`)
  // A second scan: frame indices count from its first frame; without an axis there is no energy.
  s.prepare(undefined)
  s.push([{ frame: 3, uniqueId: 103, epicsSec: 1, epicsNsec: 500_000_000, receivedS: 9, stats: [stat] }], COUNTERS)
  for await (const p of s.collectPages()) {
    t.same(p.data.manta1_roi_frame, [0])
    t.equal(p.data.manta1_roi_energy, undefined)
    t.same(p.time, [631152001.5], 'the EPICS timestamp, in Unix seconds')
  }
})
