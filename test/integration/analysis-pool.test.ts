import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import t from 'tap'
import { AnalysisPool, ROI_LATENCY_HISTOGRAM, fitEdge, roiStats, type RoiSpec, type RoiStats } from '../../src/analysis/index.js'
import { ErrorCode, FlyScanError, isFlyScanError } from '../../src/errors.js'
import { trackLeaks } from '../support/leaks.js'
import type { PoolThreadData, PoolThreadResult } from './analysis-pool-thread.js'

// The piscina pool with its real task file (build/workers/analysis-task.js), one thread as configured by default.

const WIDTH = 64
const HEIGHT = 48
const ROIS: RoiSpec[] = [
  { name: 'spot', x: 10, y: 5, width: 20, height: 12 },
  { name: 'edge', x: 40, y: 30, width: 24, height: 18 }
]

function frame16 (seed: number): Uint16Array {
  const f = new Uint16Array(WIDTH * HEIGHT)
  for (let i = 0; i < f.length; i++) f[i] = (i * 2654435761 + seed * 40503) % 65536
  return f
}

function frame8 (seed: number): Uint8Array {
  const f = new Uint8Array(WIDTH * HEIGHT)
  for (let i = 0; i < f.length; i++) f[i] = (i * 31 + seed * 7) % 256
  return f
}

function edgeScan (e0: number): { energies: number[], mu: number[] } {
  const energies = Array.from({ length: 300 }, (_, i) => 8900 + i * 0.5)
  const mu = energies.map((e, i) => 0.3 + (0.5 + Math.atan((e - e0) / 1.2) / Math.PI) + 0.005 * Math.sin(i * 12.9898))
  return { energies, mu }
}

interface Delivered { tag: number, stats: readonly RoiStats[] }

t.test('ROI results equal the pure function\'s, in submission order, counted and timed', async t => {
  trackLeaks(t)
  const delivered: Delivered[] = []
  const pool = new AnalysisPool<number>({ onRoi: (tag, stats) => delivered.push({ tag, stats }) })
  t.teardown(() => pool.destroy())
  await pool.ready()
  const frames = [frame16(1), frame16(2), frame16(3)]
  const expected: Delivered[] = []
  for (const [i, f] of frames.entries()) {
    // The second frame goes as raw bytes (what a frame ring slot holds), the others as Uint16Array views.
    const view = i === 1 ? new Uint8Array(f.buffer, f.byteOffset, f.byteLength) : f
    t.equal(pool.submitRoi(view, WIDTH, HEIGHT, 'uint16', ROIS, i), true, `frame ${i} accepted`)
    expected.push({ tag: i, stats: roiStats(f, WIDTH, HEIGHT, ROIS) })
  }
  // A uint8 frame and a full-width ROI (its bounding box is copied in one piece).
  const f8 = frame8(9)
  const wide: RoiSpec[] = [{ name: 'band', x: 0, y: 20, width: WIDTH, height: 5 }]
  t.equal(pool.submitRoi(f8, WIDTH, HEIGHT, 'uint8', wide, 3), true)
  expected.push({ tag: 3, stats: roiStats(f8, WIDTH, HEIGHT, wide) })
  await pool.close()
  t.same(delivered, expected)
  t.same(pool.counters(), { submitted: 4, completed: 4, skipped: 0, failed: 0, inFlight: 0 })
  t.equal(pool.histograms.summary(ROI_LATENCY_HISTOGRAM)?.count, 4, `${ROI_LATENCY_HISTOGRAM} has one value per frame`)
})

t.test('when every buffer is busy the frame is skipped and counted, never queued', async t => {
  trackLeaks(t)
  const delivered: number[] = []
  const pool = new AnalysisPool<number>({ roiBuffers: 2, onRoi: (tag) => delivered.push(tag) })
  t.teardown(() => pool.destroy())
  const accepted: boolean[] = []
  // All in one tick: no task can end before the loop does, so exactly the two buffers are taken.
  for (let i = 0; i < 10; i++) accepted.push(pool.submitRoi(frame16(i), WIDTH, HEIGHT, 'uint16', ROIS, i))
  t.same(accepted, [true, true, false, false, false, false, false, false, false, false])
  t.match(pool.counters(), { submitted: 10, skipped: 8, inFlight: 2 })
  await pool.close()
  t.same(delivered, [0, 1])
  t.same(pool.counters(), { submitted: 10, completed: 2, skipped: 8, failed: 0, inFlight: 0 })
  // A buffer comes back when its task ends: after close, submissions are skipped too.
  t.equal(pool.submitRoi(frame16(0), WIDTH, HEIGHT, 'uint16', ROIS, 99), false)
  t.equal(pool.counters().skipped, 9)
})

t.test('buffers are reused: more frames than buffers all complete when submitted one after another', async t => {
  trackLeaks(t)
  const delivered: number[] = []
  const pool = new AnalysisPool<number>({ roiBuffers: 1, onRoi: (tag) => delivered.push(tag) })
  t.teardown(() => pool.destroy())
  for (let i = 0; i < 5; i++) {
    t.equal(pool.submitRoi(frame8(i), WIDTH, HEIGHT, 'uint8', ROIS, i), true)
    while (pool.counters().inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 2))
  }
  t.same(delivered, [0, 1, 2, 3, 4])
  await pool.close()
})

t.test('fitEdge runs the pure fit in the pool; a fit that throws is a rejected promise with its code', async t => {
  trackLeaks(t)
  const pool = new AnalysisPool()
  t.teardown(() => pool.destroy())
  const { energies, mu } = edgeScan(8982.2)
  const fit = await pool.fitEdge(energies, mu)
  t.same(fit, fitEdge(energies, mu))
  t.ok(Math.abs(fit.e0 - 8982.2) < 0.05, `e0 ${fit.e0}`)
  const flat = new Array<number>(50).fill(1)
  const err = await pool.fitEdge(energies.slice(0, 50), flat).then(() => undefined, (e: unknown) => e)
  t.ok(isFlyScanError(err, ErrorCode.BAD_INPUT), 'a FlyScanError with its code, rebuilt after crossing the thread')
  t.match((err as FlyScanError).message, /edge fit: no edge found/)
  t.equal((err as FlyScanError).details.reason, 'no-edge')
  const few = await pool.fitEdge([1, 2, 3], [0, 1, 1]).then(() => undefined, (e: unknown) => e)
  t.match((few as Error).message, /edge fit: 3 points, fewer than the 8 needed/)
  // The thread survived both: the pool still works.
  t.ok(Math.abs((await pool.fitEdge(energies, mu)).e0 - 8982.2) < 0.05)
  await pool.close()
})

t.test('bad submissions throw at once with the numbers, and count nothing', async t => {
  trackLeaks(t)
  const pool = new AnalysisPool<number>({ roiBufferBytes: 1024 })
  t.teardown(() => pool.destroy())
  const f = frame16(0)
  t.throws(() => pool.submitRoi(f, WIDTH, HEIGHT, 'uint16', [], 0), /submitRoi: no ROIs given/)
  t.throws(() => pool.submitRoi(f, WIDTH, HEIGHT, 'uint16', [{ name: 'out', x: 60, y: 0, width: 10, height: 1 }], 0), /ROI 'out': x 60\.\.69/)
  t.throws(() => pool.submitRoi(f.subarray(0, 100), WIDTH, HEIGHT, 'uint16', ROIS, 0), /frame has 200 bytes, fewer than 64×48 uint16 \(6144\)/)
  t.throws(() => pool.submitRoi(new Float32Array(WIDTH * HEIGHT), WIDTH, HEIGHT, 'uint16', ROIS, 0), /a view of 4-byte elements does not hold uint16 pixels/)
  t.throws(() => pool.submitRoi(f, WIDTH, HEIGHT, 'uint16', ROIS, 0), /bounding box 54×43 uint16 needs 4644 bytes, more than an analysis buffer's 1024/)
  t.same(pool.counters(), { submitted: 0, completed: 0, skipped: 0, failed: 0, inFlight: 0 })
  t.throws(() => new AnalysisPool({ roiBuffers: 0 }), /analysis pool: roiBuffers 0 must be a whole number ≥ 1/)
  await pool.close()
})

t.test('close() waits for the tasks in flight and delivers them; twice is the same; work after it is refused', async t => {
  trackLeaks(t)
  const delivered: number[] = []
  const pool = new AnalysisPool<number>({ onRoi: (tag) => delivered.push(tag) })
  const { energies, mu } = edgeScan(8950)
  for (let i = 0; i < 3; i++) pool.submitRoi(frame16(i), WIDTH, HEIGHT, 'uint16', ROIS, i)
  const fit = pool.fitEdge(energies, mu)
  const first = pool.close()
  const second = pool.close()
  t.equal(first, second, 'the same promise')
  const refused = await pool.fitEdge(energies, mu).then(() => undefined, (e: unknown) => e)
  t.ok(isFlyScanError(refused, ErrorCode.CANCELLED))
  t.match((refused as Error).message, /analysis pool is closing: fitEdge refused/)
  await t.rejects(pool.ready(), /analysis pool is closing: ready refused/)
  await first
  t.same(delivered, [0, 1, 2], 'every frame submitted before close was analysed')
  t.ok(Math.abs((await fit).e0 - 8950) < 0.05, 'the fit in flight finished')
  await pool.destroy() // after close: nothing left to do, resolves
})

t.test('destroy() stops now: tasks in flight fail with FLY_ERR_CANCELLED, in order; twice is safe; close after it resolves', async t => {
  trackLeaks(t)
  const failed: Array<{ tag: number, error: FlyScanError }> = []
  const delivered: number[] = []
  const pool = new AnalysisPool<number>({ onRoi: (tag) => delivered.push(tag), onRoiError: (tag, error) => failed.push({ tag, error }) })
  // A big fit keeps the thread busy, so the frames behind it are still in flight when destroy() comes.
  const big = edgeScan(8950)
  const energies = Array.from({ length: 200_000 }, (_, i) => 8900 + i * 0.0005)
  const mu = energies.map((e) => 0.3 + (0.5 + Math.atan((e - 8950) / 1.2) / Math.PI))
  const fits = [pool.fitEdge(energies, mu), pool.fitEdge(big.energies, big.mu)]
  for (let i = 0; i < 3; i++) pool.submitRoi(frame16(i), WIDTH, HEIGHT, 'uint16', ROIS, i)
  const d1 = pool.destroy()
  const d2 = pool.destroy()
  await Promise.all([d1, d2, pool.close()])
  const outcomes = await Promise.allSettled(fits)
  for (const o of outcomes) {
    t.equal(o.status, 'rejected')
    if (o.status === 'rejected') {
      t.ok(isFlyScanError(o.reason, ErrorCode.CANCELLED), `fit: ${(o.reason as Error).message}`)
      t.match((o.reason as Error).message, /analysis edge-fit task cancelled: the pool was destroyed/)
    }
  }
  t.same(delivered, [])
  t.same(failed.map((f) => f.tag), [0, 1, 2], 'every frame in flight reported, in submission order')
  for (const f of failed) t.ok(isFlyScanError(f.error, ErrorCode.CANCELLED), f.error.message)
  t.same(pool.counters(), { submitted: 3, completed: 0, skipped: 0, failed: 3, inFlight: 0 })
  t.equal(pool.submitRoi(frame16(0), WIDTH, HEIGHT, 'uint16', ROIS, 9), false)
})

t.test('a pool owned by a worker thread (as a frame-writer worker would own one) works and exits cleanly', async t => {
  trackLeaks(t)
  const frames = [frame16(11), frame16(12), frame16(13)]
  const { energies, mu } = edgeScan(8990.5)
  const data: PoolThreadData = { frames, width: WIDTH, height: HEIGHT, rois: ROIS, energies, mu }
  const worker = new Worker(new URL('./analysis-pool-thread.js', import.meta.url), { workerData: data })
  const [result] = await once(worker, 'message') as [PoolThreadResult]
  const [code] = await once(worker, 'exit') as [number]
  t.equal(code, 0, 'the thread exited by itself once its pool was closed')
  t.same(result.results, frames.map((f, i) => ({ tag: i, stats: roiStats(f, WIDTH, HEIGHT, ROIS) })))
  t.ok(Math.abs(result.e0 - 8990.5) < 0.05, `e0 ${result.e0}`)
  t.same(result.counters, { submitted: 3, completed: 3, skipped: 0, failed: 0, inFlight: 0 })
})
