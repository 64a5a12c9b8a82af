export { PandaCaptureLogic, type CaptureEvents, type CaptureLogicOptions } from './capture-logic.js'
export { PandaWriterLogic, blockRowsFor, type BlockSizing, type WriterEvents, type WriterLogicOptions, type DrainResult } from './writer-logic.js'
export {
  PandaPipeline, CLEAN_END_REASONS,
  type PandaPipelineOptions, type PipelineResult, type PipelineEvents, type AcquisitionSummary
} from './panda-pipeline.js'
export { rowsRecordLayout, rowsForBudget, columnViews, readRowsHeader, writeRowsHeader, ROWS_HEADER_BYTES, type RowsRecordLayout } from './rows-record.js'
