import t from 'tap'
import { boundingBox, roiStats, roiStatsIn, validateRois, type RoiSpec, type RoiStats } from '../../src/analysis/index.js'
import { ErrorCode, isFlyScanError } from '../../src/errors.js'

// A 5×4 frame, pixel value = 10·row + col, so sums and centroids are easy to work out by hand:
//   row 0:  0  1  2  3  4
//   row 1: 10 11 12 13 14
//   row 2: 20 21 22 23 24
//   row 3: 30 31 32 33 34
const W = 5
const H = 4
function ramp<T extends Uint8Array | Uint16Array> (frame: T): T {
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) frame[y * W + x] = 10 * y + x
  return frame
}

t.test('an uneven ROI: sum, mean, max, min, centroid, pixels by hand', async t => {
  // x 1..3, y 1..2: 11 12 13 / 21 22 23. Sum 102. Σv·x = 1·32 + 2·34 + 3·36 = 208; Σv·y = 1·36 + 2·66 = 168.
  const [s] = roiStats(ramp(new Uint8Array(W * H)), W, H, [{ name: 'mid', x: 1, y: 1, width: 3, height: 2 }])
  t.same(s, { name: 'mid', sum: 102, mean: 17, max: 23, min: 11, centroidX: 208 / 102, centroidY: 168 / 102, pixels: 6 })
})

t.test('ROIs on the frame edges and the whole frame, in the order given', async t => {
  const frame = ramp(new Uint8Array(W * H))
  const stats = roiStats(frame, W, H, [
    { name: 'last column', x: 4, y: 0, width: 1, height: 4 }, // 4 14 24 34
    { name: 'bottom row', x: 0, y: 3, width: 5, height: 1 }, // 30..34
    { name: 'corner', x: 0, y: 0, width: 1, height: 1 }, // 0
    { name: 'all', x: 0, y: 0, width: 5, height: 4 }
  ])
  t.same(stats.map((s) => s.name), ['last column', 'bottom row', 'corner', 'all'])
  const [col, row, corner, all] = stats
  t.match(col, { sum: 76, max: 34, min: 4, centroidX: 4, pixels: 4 })
  t.equal(col?.centroidY, (14 + 2 * 24 + 3 * 34) / 76)
  t.match(row, { sum: 160, mean: 32, centroidY: 3 })
  t.equal(row?.centroidX, (31 + 2 * 32 + 3 * 33 + 4 * 34) / 160)
  t.match(corner, { sum: 0, max: 0, min: 0, pixels: 1 })
  t.ok(Number.isNaN(corner?.centroidX) && Number.isNaN(corner?.centroidY), 'a zero sum has a NaN centroid')
  // All 20 pixels: Σ = 4·(0+1+2+3+4) + 5·10·(0+1+2+3) = 40 + 300.
  t.match(all, { sum: 340, mean: 17, max: 34, min: 0, pixels: 20 })
})

t.test('16-bit pixels above 255 and a single lit pixel', async t => {
  const frame = new Uint16Array(W * H)
  frame[2 * W + 3] = 60000
  frame[0] = 1000
  const [spot, all] = roiStats(frame, W, H, [
    { name: 'spot', x: 2, y: 1, width: 3, height: 3 },
    { name: 'all', x: 0, y: 0, width: W, height: H }
  ])
  t.same(spot, { name: 'spot', sum: 60000, mean: 60000 / 9, max: 60000, min: 0, centroidX: 3, centroidY: 2, pixels: 9 })
  t.equal(all?.sum, 61000)
  t.equal(all?.centroidX, (3 * 60000) / 61000)
  t.equal(all?.centroidY, (2 * 60000) / 61000)
})

t.test('a zero frame: sum 0, mean 0, NaN centroid', async t => {
  const [s] = roiStats(new Uint16Array(W * H), W, H, [{ name: 'all', x: 0, y: 0, width: W, height: H }])
  t.match(s, { sum: 0, mean: 0, max: 0, min: 0, pixels: 20 })
  t.ok(Number.isNaN(s?.centroidX))
  t.ok(Number.isNaN(s?.centroidY))
})

t.test('a wide 16-bit row of full-scale pixels sums exactly (rows too wide for int32 take the float path)', async t => {
  const width = 40_000 // 40,000 × 65535 > 2^31
  const frame = new Uint16Array(width * 2).fill(65535)
  const [s] = roiStats(frame, width, 2, [{ name: 'all', x: 0, y: 0, width, height: 2 }])
  t.equal(s?.sum, 65535 * width * 2)
  t.equal(s?.centroidX, (width - 1) / 2)
  t.equal(s?.centroidY, 0.5)
})

/** The definition, written plainly in doubles: the reference for every arithmetic path of roiStats. */
function reference (frame: Uint8Array | Uint16Array, width: number, roi: RoiSpec): RoiStats {
  let sum = 0
  let sumX = 0
  let sumY = 0
  let max = -Infinity
  let min = Infinity
  for (let y = roi.y; y < roi.y + roi.height; y++) {
    for (let x = roi.x; x < roi.x + roi.width; x++) {
      const v = frame[y * width + x] as number
      sum += v
      sumX += v * x
      sumY += v * y
      max = Math.max(max, v)
      min = Math.min(min, v)
    }
  }
  const pixels = roi.width * roi.height
  return { name: roi.name, sum, mean: sum / pixels, max, min, centroidX: sumX / sum, centroidY: sumY / sum, pixels }
}

t.test('random frames: every arithmetic path (int32 row sums, int32 Σv·x, doubles) matches the plain definition', async t => {
  let seed = 7
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
    return seed % n
  }
  // uint8 728 wide: all int32; uint8 5000 wide: Σv·x in doubles; uint16 300 wide: Σv·x in doubles; uint16 40000: all doubles.
  for (const [Type, top, width, height] of [[Uint8Array, 256, 728, 20], [Uint8Array, 256, 5000, 3], [Uint16Array, 65536, 300, 10], [Uint16Array, 65536, 40_000, 2]] as const) {
    const frame = new Type(width * height)
    for (let i = 0; i < frame.length; i++) frame[i] = rand(top)
    const rois: RoiSpec[] = [
      { name: 'all', x: 0, y: 0, width, height },
      { name: 'part', x: rand(width >> 1), y: rand(height >> 1), width: 1 + rand(width >> 1), height: 1 + rand(height >> 1) }
    ]
    const got = roiStats(frame, width, height, rois)
    for (const [i, roi] of rois.entries()) {
      const want = reference(frame, width, roi)
      const g = got[i]
      t.same({ ...g, centroidX: 0, centroidY: 0 }, { ...want, centroidX: 0, centroidY: 0 }, `${Type.name} ${width}×${height} ${roi.name}: sums exact`)
      t.ok(Math.abs((g?.centroidX ?? NaN) - want.centroidX) < 1e-9 && Math.abs((g?.centroidY ?? NaN) - want.centroidY) < 1e-9,
        `${Type.name} ${width}×${height} ${roi.name}: centroid (${g?.centroidX}, ${g?.centroidY})`)
    }
  }
})

t.test('roiStatsIn: a box cut from the frame gives the same statistics as the whole frame', async t => {
  const frame = ramp(new Uint8Array(W * H))
  const rois: RoiSpec[] = [{ name: 'a', x: 1, y: 1, width: 2, height: 2 }, { name: 'b', x: 2, y: 2, width: 3, height: 2 }]
  const box = boundingBox(rois)
  t.same(box, { x: 1, y: 1, width: 4, height: 3 })
  const cut = new Uint8Array(box.width * box.height)
  for (let r = 0; r < box.height; r++) cut.set(frame.subarray((box.y + r) * W + box.x, (box.y + r) * W + box.x + box.width), r * box.width)
  t.same(roiStatsIn(cut, box.width, box.x, box.y, rois), roiStats(frame, W, H, rois))
})

t.test('invalid ROIs are refused with the ROI and the numbers named', async t => {
  const frame = new Uint8Array(W * H)
  const cases: Array<[RoiSpec[], RegExp]> = [
    [[{ name: 'wide', x: 3, y: 0, width: 3, height: 1 }], /ROI 'wide': x 3\.\.5, y 0\.\.0 goes outside the 5×4 frame/],
    [[{ name: 'low', x: 0, y: 2, width: 1, height: 3 }], /ROI 'low': x 0\.\.0, y 2\.\.4 goes outside the 5×4 frame/],
    [[{ name: 'neg', x: -1, y: 0, width: 1, height: 1 }], /ROI 'neg': origin \(-1, 0\) must be whole pixels ≥ 0/],
    [[{ name: 'half', x: 0.5, y: 0, width: 1, height: 1 }], /ROI 'half': origin \(0\.5, 0\)/],
    [[{ name: 'empty', x: 0, y: 0, width: 0, height: 1 }], /ROI 'empty': size 0×1 must be whole pixels ≥ 1/],
    [[{ name: '', x: 0, y: 0, width: 1, height: 1 }], /ROI #0 has no name/],
    [[{ name: 'twice', x: 0, y: 0, width: 1, height: 1 }, { name: 'twice', x: 1, y: 0, width: 1, height: 1 }], /ROI 'twice' is named twice/]
  ]
  for (const [rois, message] of cases) {
    let thrown: unknown
    try {
      roiStats(frame, W, H, rois)
    } catch (err) {
      thrown = err
    }
    t.ok(isFlyScanError(thrown, ErrorCode.BAD_INPUT), `${message.source}: a FLY_ERR_BAD_INPUT`)
    t.match((thrown as Error | undefined)?.message, message)
  }
  t.throws(() => roiStats(new Uint8Array(10), W, H, [{ name: 'a', x: 0, y: 0, width: 1, height: 1 }]), /frame has 10 pixels, fewer than its 5×4 size/)
  t.throws(() => validateRois([], 0, 4), /frame size 0×4/)
  t.doesNotThrow(() => validateRois([{ name: 'all', x: 0, y: 0, width: W, height: H }], W, H))
})

t.test('a whole 728×544 uint8 frame: time per call (reported, not asserted: the machine is shared)', async t => {
  const width = 728
  const height = 544
  const frame = new Uint8Array(width * height)
  for (let i = 0; i < frame.length; i++) frame[i] = (i * 7919) % 251
  const rois = [{ name: 'all', x: 0, y: 0, width, height }]
  let expected = 0
  for (const v of frame) expected += v
  for (let i = 0; i < 50; i++) roiStats(frame, width, height, rois)
  const runs = 200
  const times: number[] = []
  let last = 0
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint()
    last = roiStats(frame, width, height, rois)[0]?.sum ?? 0
    times.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  times.sort((a, b) => a - b)
  t.equal(last, expected)
  t.comment(`roiStats over a whole 728×544 uint8 frame: best ${times[0]?.toFixed(3)} ms, median ${times[runs >> 1]?.toFixed(3)} ms per call`)
})
