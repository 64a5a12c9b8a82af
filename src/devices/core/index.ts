export * from './protocols.js'
export { Device, type ConnectOptions, type ConnectFailure } from './device.js'
export { Signal, SignalR, SignalW, SignalRW, SignalX, softSignalRW, softSignalRAndSetter, softSignalX, withTimeout, type SoftSignalOptions } from './signal.js'
export { realClock, VirtualClock, type Clock } from './clock.js'
export {
  DETECTOR_TRIGGERS, checkTriggerInfo, framesFor, stallTimeoutMs,
  type DetectorTrigger, type TriggerInfo, type DetectorController, type DetectorWriter, type FrameCounters
} from './detector.js'
export {
  checkFlyScanRequest,
  type FlyScanDevice, type FlyScanRequest, type TomographyRequest as TomographyFlyRequest, type XasRequest as XasFlyRequest, type StillRequest
} from './fly-scan.js'
export { localFileUri, hdf5Resource, StreamDatumCursor } from './stream-assets.js'
