/**
 * A worker thread that owns an AnalysisPool, as a frame-writer worker would (analysis-pool.test.ts spawns it): it
 * submits the frames it is given, fits an edge, closes the pool, and posts everything back.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { AnalysisPool, type RoiSpec, type RoiStats } from '../../src/analysis/index.js'

export interface PoolThreadData {
  readonly frames: Uint16Array[]
  readonly width: number
  readonly height: number
  readonly rois: RoiSpec[]
  readonly energies: number[]
  readonly mu: number[]
}

export interface PoolThreadResult {
  readonly results: Array<{ tag: number, stats: readonly RoiStats[] }>
  readonly e0: number
  readonly counters: ReturnType<AnalysisPool['counters']>
}

const data = workerData as PoolThreadData
const results: PoolThreadResult['results'] = []
const pool = new AnalysisPool<number>({ roiBuffers: data.frames.length, onRoi: (tag, stats) => results.push({ tag, stats }) })
for (const [i, frame] of data.frames.entries()) pool.submitRoi(frame, data.width, data.height, 'uint16', data.rois, i)
const fit = await pool.fitEdge(data.energies, data.mu)
await pool.close()
const result: PoolThreadResult = { results, e0: fit.e0, counters: pool.counters() }
parentPort?.postMessage(result)
