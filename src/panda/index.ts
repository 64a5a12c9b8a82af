/** Talking to a PandABox: the control-port client. The folder's only public entry. */
export { PandaControlClient } from './control-client.js'
export type { PandaControlClientOptions } from './control-client.js'
export {
  BLOCKS, PANDA_CLOCK_HZ, TIME_UNITS, SECONDS_PER_UNIT, POS_CAPTURE, EXT_CAPTURE, TRIG_EDGE, PCOMP_DIR, PCOMP_RELATIVE, CALC_TYPE,
  blockInstance, fieldSpec, outputsOfKind, checkWrite, checkTableWrite,
  type BlockName, type BlockSpec, type FieldKind, type FieldSpec, type TimeUnits, type PosCapture, type TrigEdge, type PcompDir,
  type PcompRelative, type CalcType
} from './blocks.js'
export {
  SEQ_TRIGGERS, SEQ_TABLE_MAX_ROWS, SEQ_ROW_WORDS, SEQ_OUTPUT_BITS, seqRow, encodeSeqTable, decodeSeqTable,
  type SeqRow, type SeqTrigger, type SeqOutput
} from './seq-table.js'
export {
  defaultTriggerContext, fmt, dataRateProblems, rejectIfInvalid,
  tomographyNumbers, validateTomography, xasNumbers, validateXas, seqTableNumbers, validateSeqTable,
  type ProblemCode, type ValidationProblem, type TriggerContext, type TomographyRequest, type TomographyNumbers,
  type XasRequest, type XasNumbers, type SeqTableRequest, type SeqTableNumbers
} from './validate.js'
export {
  tomographyTrigger, xasTrigger, seqTableTrigger, triggerSetup, completeTimeoutMs, capturedDatasets, timeValue, writeLine,
  type PandaWrite, type CaptureField, type CapturedDataset, type TriggerLogicName, type ScanMotion, type PandaTriggerSetup,
  type TomographyParams, type XasParams, type SeqTableParams, type SeqInput, type PandaFlyInfo
} from './trigger-logic.js'
export { HDFPanda, defaultPandaTimeouts, type HDFPandaOptions, type PandaTimeouts } from './device.js'
