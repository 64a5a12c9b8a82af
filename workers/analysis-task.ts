/**
 * The piscina task file of the analysis pool (src/analysis/pool.ts). Stateless: each call runs one task and returns
 * a small result; failures come back as values, never as throws (src/analysis/task.ts).
 */
import { runAnalysisTask, warmUp, type AnalysisTask, type AnalysisTaskResult } from '../src/analysis/index.js'

warmUp()

export default function analysisTask (task: AnalysisTask): AnalysisTaskResult {
  return runAnalysisTask(task)
}
