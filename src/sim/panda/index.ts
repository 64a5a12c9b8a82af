/** The simulated PandABox: control port, data port and blocks on one timeline. The folder's only public entry. */
export { SimPanda, SIM_IDN, type SimPandaOptions } from './sim-panda.js'
export {
  PandaSimulation, captureLayout, realClock,
  type SimulationOptions, type SimPandaClock, type SimPandaStats, type TriggerSink, type TriggerEdge
} from './simulation.js'
export type { MotorLike } from './blocks.js'
export { ADC_DEFAULTS, edgeFraction, type AdcOptions } from './adc.js'
export { rateBlock, type RateModeOptions } from './rate.js'
export type { DataClientRecord } from './data-server.js'
export type { CaptureSink, Completion } from './pcap.js'
export { ParseError } from './cparse.js'
export { CLOCK_HZ, TICKS_PER_MS, ADC_VOLTS_PER_COUNT, SEQ_MAX_ROWS } from './definitions.js'
export { formatG, formatDouble, isoNs } from './format.js'
export {
  CaptureLayout, captureHeader, headerText, parseWireOptions, frames,
  type HeaderField, type HeaderData, type WireOptions, type CaptureField, type RawField
} from './wire.js'
export { ChangeContext, Model, type Reply } from './model.js'
