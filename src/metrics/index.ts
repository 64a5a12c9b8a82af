export { HistogramSet, type EncodedHistograms } from './histograms.js'
export { formatSummaries, toPrometheus, unitOf, SUMMARY_KEYS, type LatencySummary } from './summary.js'
export { nowNs, nowUs } from './clock.js'
