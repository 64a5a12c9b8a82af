export { PandaReplayServer, type ReplayServerOptions, type ReplayConnection } from './panda-replay-server.js'
export {
  syntheticStream, syntheticStreamBytes, syntheticHeader, syntheticValue, rowBytesOf, XAS_FIELDS,
  type SyntheticField, type SyntheticStreamOptions
} from './panda-stream.js'
export * from './ioc/index.js'
export {
  SimPanda, PandaSimulation, captureLayout, ADC_DEFAULTS, edgeFraction,
  type SimPandaOptions, type SimulationOptions, type SimPandaClock, type SimPandaStats, type TriggerSink,
  type TriggerEdge, type MotorLike, type AdcOptions, type RateModeOptions, type DataClientRecord
} from './panda/index.js'
export { SimBeamline, SIM_HOST, gateWidthS, type SimBeamlineOptions, type SimTriggerStats } from './beamline.js'
