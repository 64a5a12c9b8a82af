export { PandaCaptureLogic, type CaptureEvents, type CaptureLogicOptions } from './capture-logic.js'
export { PandaWriterLogic, blockRowsFor, type BlockSizing, type WriterEvents, type WriterLogicOptions, type DrainResult } from './writer-logic.js'
export {
  PandaPipeline, CLEAN_END_REASONS,
  type PandaPipelineOptions, type PipelineResult, type PipelineEvents, type AcquisitionSummary
} from './panda-pipeline.js'
export { rowsRecordLayout, rowsForBudget, columnViews, readRowsHeader, writeRowsHeader, ROWS_HEADER_BYTES, type RowsRecordLayout } from './rows-record.js'
export {
  CameraCaptureLogic, FrameMeta, frameCounters,
  type CameraCaptureLogicOptions, type CaptureCounters, type CaptureLogicEvents, type FrameUpdate
} from './camera-capture-logic.js'
export { FrameWriterLogic, type FrameWriterEvents, type FrameWriterLogicOptions, type FrameDrainResult, type FrameInfo } from './frame-writer-logic.js'
export {
  CameraPipeline, type CameraPipelineOptions, type CameraPipelineEvents, type CameraPipelineResult, type CameraCounters
} from './camera-pipeline.js'
