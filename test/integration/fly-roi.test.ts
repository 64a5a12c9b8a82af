/**
 * Live ROI events end to end, in-process: config/sim.yaml's manta1 has the ROIs `spot` and `full`; its frame writer
 * (given the camera's roiStream, as `tst-fly run` does) analyses each frame in its AnalysisPool, and an XAS fly scan
 * emits the stream `manta1_roi` as event pages while it runs. Checked: the descriptor's keys, one event per frame
 * analysed (skipped frames counted in run_stop `roi`), consecutive UniqueIds and frame indices, the energy of each
 * point (startE + (k + 0.5)·(endE − startE)/npoints), and every statistic against the frames in the camera file
 * (recomputed with numpy).
 */
import t from 'tap'
import { TstFlyFrameWriter, type ADVimba } from '../../src/areadetector/index.js'
import { pathProviderFor } from '../../src/paths/index.js'
import { xasFly } from '../../src/plans/index.js'
import { privateCaRepeater } from '../support/ca-repeater.js'
import { FlyRig } from '../support/fly-rig.js'
import { requireHdf5Tools, runPython } from '../support/h5py.js'
import { validateDocument } from '../support/schemas.js'

requireHdf5Tools()
await privateCaRepeater(t)

const STATS_SCRIPT = `
import json, sys
import h5py, numpy as np
rois = json.loads(sys.argv[2])
out = []
with h5py.File(sys.argv[1], 'r') as f:
    d = f['/entry/data/data']
    uid = f['/entry/instrument/NDAttributes/NDArrayUniqueId'][()].tolist()
    for k in range(d.shape[0]):
        frame = d[k].astype(np.float64)
        row = {'uid': uid[k]}
        for r in rois:
            box = frame[r['y']:r['y'] + r['height'], r['x']:r['x'] + r['width']]
            s = box.sum()
            ys, xs = np.mgrid[r['y']:r['y'] + r['height'], r['x']:r['x'] + r['width']]
            row[r['name']] = [s, box.mean(), box.max(), (box * xs).sum() / s if s > 0 else None, (box * ys).sum() / s if s > 0 else None]
        out.append(row)
print(json.dumps(out))
`

interface Page { descriptor: string, data: Record<string, number[]>, seq_num: number[] }

t.test('xas_fly with a camera that has ROIs: the manta1_roi stream, its energies and its statistics', async t => {
  const rig = await FlyRig.start(t)
  const manta1 = rig.cameras.find((c) => c.name === 'manta1') as ADVimba
  const stream = manta1.roiStream
  if (stream === undefined) throw new Error('config/sim.yaml: manta1 has no rois')
  t.same(stream.rois.map((r) => r.name), ['spot', 'full'])
  // As src/cli/run.ts wires it: tst-fly's writer, fed the camera's ROI stream.
  const entry = rig.config.devices.find((d) => d.name === 'manta1')
  manta1.setWriter(new TstFlyFrameWriter({
    prefix: String(entry?.prefix), ca: rig.config.ca, pathProvider: pathProviderFor(rig.config.data), runMetadata: rig.config.metadata, roi: stream
  }))
  t.same(rig.flyscan.roiCollectables().map((r) => r.name), ['manta1_roi'])

  const npoints = 100
  const [startE, endE] = [0, -4]
  const outcome = await rig.run(xasFly(rig.flyscan, { npoints, totalTime: 1, startE, endE }))
  t.equal(outcome.error, undefined, `the scan succeeded: ${String(outcome.error)}`)
  for (const [name, doc] of rig.docs) validateDocument(name, doc)

  const descriptors = rig.docs.filter(([n]) => n === 'descriptor').map(([, d]) => d as unknown as { uid: string, name: string, data_keys: Record<string, { dtype: string, external?: string }> })
  t.same(descriptors.map((d) => d.name), ['primary', 'manta1_roi'], 'primary, then the ROI stream')
  const roiDescriptor = descriptors[1] as (typeof descriptors)[number]
  const keys = Object.keys(roiDescriptor.data_keys)
  t.same(keys.sort(), [
    'manta1_roi_energy', 'manta1_roi_frame',
    ...['full', 'spot'].flatMap((r) => ['cx', 'cy', 'max', 'mean', 'sum'].map((f) => `manta1_roi_${r}_${f}`)),
    'manta1_roi_unique_id'
  ].sort())
  t.ok(Object.values(roiDescriptor.data_keys).every((k) => k.external === undefined), 'ROI values are in the events, not in a file')

  const pages = rig.docs.filter(([n, d]) => n === 'event_page' && (d as unknown as Page).descriptor === roiDescriptor.uid).map(([, d]) => d as unknown as Page)
  t.ok(pages.length >= 1, `${pages.length} event pages`)
  const column = (k: string): number[] => pages.flatMap((p) => p.data[k] as number[])
  const frames = column('manta1_roi_frame')
  const uids = column('manta1_roi_unique_id')
  const stop = rig.docs.at(-1)?.[1] as unknown as { exit_status: string, roi?: Record<string, { submitted: number, completed: number, skipped: number, failed: number, rows: number }> }
  t.equal(stop.exit_status, 'success')
  const counters = stop.roi?.manta1_roi
  t.ok(counters !== undefined, 'run_stop has the ROI counters')
  t.equal(counters?.submitted, npoints, 'every frame was offered to the pool')
  t.equal(counters?.failed, 0)
  t.equal(frames.length, (counters?.completed ?? -1), 'one event per frame analysed')
  t.equal(frames.length + (counters?.skipped ?? 0), npoints, 'analysed + skipped = frames')
  t.ok(frames.length > 0, `${frames.length} frames analysed, ${counters?.skipped ?? 0} skipped`)
  t.ok(frames.every((f, i) => i === 0 || f > (frames[i - 1] as number)), 'frame indices rise')
  t.ok(frames.every((f) => f >= 0 && f < npoints))
  t.same(column('manta1_roi_energy'), frames.map((k) => startE + (k + 0.5) * (endE - startE) / npoints), 'energy of point k')
  t.same(pages.flatMap((p) => p.seq_num), Array.from({ length: frames.length }, (_, i) => i + 1), 'seq_num 1..n')

  // Every statistic against the file (the frames the writer wrote, recomputed with numpy).
  const file = rig.files.find((f) => /manta1/.test(f)) as string
  const expected = JSON.parse(runPython(STATS_SCRIPT, [file, JSON.stringify(stream.rois)])) as Array<Record<string, number | Array<number | null>>>
  t.equal(expected.length, npoints, 'the file has every frame')
  let mismatches = 0
  frames.forEach((k, i) => {
    const want = expected[k] as Record<string, number | Array<number | null>>
    if (want.uid !== uids[i]) mismatches++
    for (const r of ['spot', 'full']) {
      const w = want[r] as Array<number | null>
      const got = ['sum', 'mean', 'max', 'cx', 'cy'].map((f) => (column(`manta1_roi_${r}_${f}`)[i]))
      got.forEach((g, j) => {
        const e = w[j]
        const ok = e === null || e === undefined ? g === null || Number.isNaN(g) : typeof g === 'number' && Math.abs(g - e) <= 1e-9 * Math.max(1, Math.abs(e))
        if (!ok) {
          mismatches++
          if (mismatches < 5) t.comment(`frame ${k} ${r} field ${j}: got ${String(g)}, file says ${String(e)}`)
        }
      })
    }
  })
  t.equal(mismatches, 0, 'every ROI statistic and UniqueId matches the file')
  t.ok(new Set(column('manta1_roi_spot_sum')).size > 1 || new Set(column('manta1_roi_full_sum')).size > 1, 'the frames differ (the check is not vacuous)')
})
