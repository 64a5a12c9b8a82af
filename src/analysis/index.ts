/** Live analysis: ROI statistics of camera frames and absorption-edge fits, pure and in a piscina pool. */
export {
  roiStats, roiStatsIn, validateRois, boundingBox, bytesPerPixel,
  type RoiSpec, type RoiStats, type FrameDtype, type FrameView, type BoundingBox
} from './roi.js'
export { fitEdge, type EdgeFit, type EdgeFitOptions } from './edge-fit.js'
export {
  runAnalysisTask, warmUp, type AnalysisTask, type AnalysisTaskResult, type RoiTask, type EdgeFitTask, type PingTask
} from './task.js'
export { AnalysisPool, ROI_LATENCY_HISTOGRAM, type AnalysisPoolOptions, type AnalysisCounters } from './pool.js'
