import t from 'tap'
import { roiStats, runAnalysisTask, warmUp, type RoiSpec } from '../../src/analysis/index.js'
import { ErrorCode, fromWire } from '../../src/errors.js'

// The pure side of the pool's task file: what a pool thread runs, without a thread.

t.test('roi task: the box in the shared buffer gives the whole frame\'s statistics', async t => {
  const width = 8
  const height = 6
  const frame = new Uint16Array(width * height)
  for (let i = 0; i < frame.length; i++) frame[i] = 1000 + 37 * i
  const rois: RoiSpec[] = [{ name: 'a', x: 2, y: 1, width: 3, height: 2 }, { name: 'b', x: 4, y: 3, width: 4, height: 3 }]
  const box = { x: 2, y: 1, width: 6, height: 5 }
  const buffer = new SharedArrayBuffer(box.width * box.height * 2)
  const view = new Uint16Array(buffer)
  for (let r = 0; r < box.height; r++) view.set(frame.subarray((box.y + r) * width + box.x, (box.y + r) * width + box.x + box.width), r * box.width)
  const result = runAnalysisTask({ kind: 'roi', buffer, dtype: 'uint16', box, rois })
  t.same(result, { ok: true, kind: 'roi', stats: roiStats(frame, width, height, rois) })
})

t.test('a failing task returns its error in wire form with its code, never throws', async t => {
  const buffer = new SharedArrayBuffer(16)
  const tooBig = runAnalysisTask({ kind: 'roi', buffer, dtype: 'uint16', box: { x: 0, y: 0, width: 4, height: 4 }, rois: [{ name: 'a', x: 0, y: 0, width: 1, height: 1 }] })
  t.equal(tooBig.ok, false)
  if (!tooBig.ok) {
    t.equal(tooBig.error.code, ErrorCode.BAD_INPUT)
    t.match(tooBig.error.message, /a 4×4 uint16 box needs 32 bytes, the buffer has 16/)
  }
  const outside = runAnalysisTask({ kind: 'roi', buffer, dtype: 'uint8', box: { x: 2, y: 2, width: 2, height: 2 }, rois: [{ name: 'a', x: 1, y: 2, width: 1, height: 1 }] })
  t.equal(outside.ok, false)
  if (!outside.ok) t.match(outside.error.message, /ROI 'a': origin \(-1, 0\)/)
  const flat = runAnalysisTask({ kind: 'edge-fit', energies: Float64Array.from({ length: 10 }, (_, i) => i), mu: new Float64Array(10), options: {} })
  t.equal(flat.ok, false)
  if (!flat.ok) {
    const err = fromWire(flat.error)
    t.equal(err.code, ErrorCode.BAD_INPUT)
    t.equal(err.details.reason, 'no-edge')
    t.match(err.message, /edge fit: no edge found/)
  }
  const unknown = runAnalysisTask({ kind: 'median' } as unknown as Parameters<typeof runAnalysisTask>[0])
  t.equal(unknown.ok, false)
  if (!unknown.ok) {
    t.equal(unknown.error.code, ErrorCode.PROTOCOL_MESSAGE)
    t.match(unknown.error.message, /analysis task: unknown kind "median"/)
  }
})

t.test('edge-fit task: the fit of the pure function', async t => {
  const energies = Float64Array.from({ length: 50 }, (_, i) => i)
  const mu = energies.map((e) => 1 + 2 * (0.5 + Math.atan((e - 20.3) / 1.7) / Math.PI))
  const result = runAnalysisTask({ kind: 'edge-fit', energies, mu, options: {} })
  t.equal(result.ok, true)
  if (result.ok && result.kind === 'edge-fit') {
    t.ok(Math.abs(result.fit.e0 - 20.3) < 1e-6, `e0 ${result.fit.e0}`)
    t.ok(Math.abs(result.fit.stepHeight - 2) < 1e-6, `stepHeight ${result.fit.stepHeight}`)
  }
})

t.test('ping answers; warmUp runs without error and leaves the results unchanged', async t => {
  t.same(runAnalysisTask({ kind: 'ping' }), { ok: true, kind: 'ping' })
  const frame = new Uint8Array(300 * 4).map((_, i) => i % 256)
  const rois: RoiSpec[] = [{ name: 'all', x: 0, y: 0, width: 300, height: 4 }]
  const before = roiStats(frame, 300, 4, rois)
  warmUp()
  t.same(roiStats(frame, 300, 4, rois), before)
})
