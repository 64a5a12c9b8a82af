export { PandaCaptureLogic, type CaptureEvents, type CaptureLogicOptions } from './capture-logic.js'
export { PandaWriterLogic, type WriterEvents, type WriterLogicOptions, type DrainResult } from './writer-logic.js'
export {
  PandaPipeline, CLEAN_END_REASONS,
  type PandaPipelineOptions, type PipelineResult, type PipelineEvents, type AcquisitionSummary
} from './panda-pipeline.js'
