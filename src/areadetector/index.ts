/** areaDetector cameras (docs/devices.md, "ADVimba and StandardDetector"). The folder's only public entry. */
export {
  MANTA_DEADTIME_S, TRIGGER_LINES, deadtimeOfModel, exposureLimits, vimbaDeadtime, vimbaSettings,
  type VimbaCamera, type VimbaExposureMode, type VimbaImageMode, type VimbaSettings, type VimbaTriggerMode
} from './vimba-trigger.js'
export { ADBaseIO, NDArrayBaseIO, NDPluginBaseIO, VimbaDriverIO, type AdSignalOptions } from './drivers.js'
export {
  ACQUIRING_DETECTOR_STATES, BAD_DETECTOR_STATES, READY_DETECTOR_STATES, VimbaController, defaultVimbaTimeouts, waitForValue, waitUntil,
  type DetectorDiagnosis, type VimbaControllerOptions, type VimbaTimeouts
} from './vimba-controller.js'
export {
  StandardDetector, defaultDetectorTimeouts, suspectOf,
  type DetectorTimeouts, type ObservableController, type StandardDetectorOptions
} from './standard-detector.js'
export { ADVIMBA_DEFAULTS, ADVimba, type ADVimbaOptions } from './advimba.js'
// The data parts (DetectorWriter implementations), written beside this folder's detector code.
export * from './frame-writer.js'
export * from './ioc-hdf-writer.js'
export { RoiStream, ROI_FIELDS, parseRois, pointEnergy, type RoiEnergyAxis } from './roi-stream.js'
