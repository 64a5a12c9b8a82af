/**
 * bench analysis: ROI statistics of a whole Manta frame (728×544, uint8 and uint16) in the calling thread; the
 * AnalysisPool's frame rate and submit → result latency (`analysis.roi_us`) with four ROIs, frames submitted at a
 * fixed rate as a writer would; an edge fit of 2000 samples. Limit: a plain int32 sum over the same frame (the
 * cheapest full pass over its pixels).
 */
import { AnalysisPool, fitEdge, roiStats, ROI_LATENCY_HISTOGRAM, type RoiSpec } from '../src/analysis/index.js'
import { nowNs } from '../src/metrics/index.js'
import { measure, target } from './harness.js'
import type { BenchResult, Benchmark, Measurement } from './harness.js'

const WIDTH = 728
const HEIGHT = 544
const WHOLE: RoiSpec[] = [{ name: 'all', x: 0, y: 0, width: WIDTH, height: HEIGHT }]
const FOUR: RoiSpec[] = [
  { name: 'all', x: 0, y: 0, width: WIDTH, height: HEIGHT },
  { name: 'beam', x: 300, y: 200, width: 128, height: 128 },
  { name: 'left', x: 0, y: 0, width: 100, height: HEIGHT },
  { name: 'right', x: WIDTH - 100, y: 0, width: 100, height: HEIGHT }
]

function frame<T extends Uint8Array | Uint16Array> (f: T, top: number): T {
  for (let i = 0; i < f.length; i++) f[i] = (i * 7919) % top
  return f
}

/** Milliseconds per call of `fn`, the median of `calls` calls (timed one by one). */
function msPerCall (calls: number, fn: () => number): number {
  const times: number[] = []
  let sink = 0
  for (let i = 0; i < calls; i++) {
    const t0 = nowNs()
    sink += fn()
    times.push((nowNs() - t0) / 1e6)
  }
  if (Number.isNaN(sink)) throw new Error('unreachable: keeps the calls alive')
  times.sort((a, b) => a - b)
  return times[times.length >> 1] as number
}

function plainSum (f: Uint8Array): number {
  let s = 0
  for (let i = 0; i < f.length; i++) s = (s + (f[i] as number)) | 0
  return s
}

/** Frames at `rateHz` into a pool for `frames` frames; returns analysed frames per second and the pool's counters. */
async function poolRun (frames: number, rateHz: number, f: Uint16Array): Promise<{ fps: number, skipped: number, pool: AnalysisPool }> {
  let done = 0
  const pool = new AnalysisPool<number>({ onRoi: () => { done++ } })
  await pool.ready() // the thread is up and warm, as a scan's prepare would have it
  const periodNs = 1e9 / rateHz
  const start = nowNs()
  for (let i = 0; i < frames; i++) {
    while (nowNs() - start < i * periodNs) await new Promise((resolve) => setImmediate(resolve))
    pool.submitRoi(f, WIDTH, HEIGHT, 'uint16', FOUR, i)
  }
  await pool.close()
  const fps = done / ((nowNs() - start) / 1e9)
  return { fps, skipped: pool.counters().skipped, pool }
}

export const bench: Benchmark = {
  name: 'analysis',
  description: 'ROI statistics of 728×544 frames (pure and through the piscina pool) and the edge fit',
  async run ({ quick }): Promise<BenchResult> {
    const runs = quick ? 2 : 5
    const calls = quick ? 20 : 200
    const poolFrames = quick ? 50 : 1000
    const rateHz = 200
    const f8 = frame(new Uint8Array(WIDTH * HEIGHT), 251)
    const f16 = frame(new Uint16Array(WIDTH * HEIGHT), 4096)
    const energies = Array.from({ length: 2000 }, (_, i) => -3 + i * 0.001)
    const mu = energies.map((e, i) => 1.3 - (0.5 + Math.atan((e + 2) / 0.05) / Math.PI) + 0.002 * Math.sin(i * 12.9898))
    const measurements: Measurement[] = [
      await measure('roiStats whole frame uint8', 'ours', 'time per frame', 'ms', runs, () => msPerCall(calls, () => roiStats(f8, WIDTH, HEIGHT, WHOLE)[0]?.sum ?? 0)),
      await measure('roiStats whole frame uint16', 'ours', 'time per frame', 'ms', runs, () => msPerCall(calls, () => roiStats(f16, WIDTH, HEIGHT, WHOLE)[0]?.sum ?? 0)),
      await measure('plain int32 sum uint8', 'limit', 'time per frame', 'ms', runs, () => msPerCall(calls, () => plainSum(f8))),
      await measure('fitEdge 2000 points', 'ours', 'time per fit', 'ms', runs, () => msPerCall(quick ? 3 : 20, () => fitEdge(energies, mu).e0))
    ]
    const latency: BenchResult['latency'] = {}
    let skipped = 0
    measurements.push(await measure(`AnalysisPool 4 ROIs uint16 at ${rateHz} Hz`, 'ours', 'frames analysed/s', 'frames/s', quick ? 1 : 3, async () => {
      const r = await poolRun(poolFrames, rateHz, f16)
      skipped += r.skipped
      const summary = r.pool.histograms.summary(ROI_LATENCY_HISTOGRAM)
      if (summary !== undefined) Object.assign(latency, { [ROI_LATENCY_HISTOGRAM]: summary })
      r.pool.histograms.destroy()
      return r.fps
    }, 0))
    return {
      name: 'analysis',
      description: this.description,
      workload: { frame: `${WIDTH}x${HEIGHT}`, rois: FOUR.length, poolFrames, rateHz, threads: 1, skipped },
      measurements,
      latency,
      targets: [
        target(measurements, 'roiStats whole frame uint8', 'time per frame', '<=', 1, 'ms'),
        target(measurements, `AnalysisPool 4 ROIs uint16 at ${rateHz} Hz`, 'frames analysed/s', '>=', rateHz * 0.95, 'frames/s')
      ]
    }
  }
}
