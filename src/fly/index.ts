/** Fly scans: the coordinator of PandA, cameras and motor, and the timing validation (docs/fly-scans.md, docs/timing.md). */
export {
  FlyScan,
  type CoordinatedCamera, type CoordinatedMotor, type CoordinatedPanda, type FlyScanOptions, type FlyScanPlan, type FlyScanProgress
} from './coordinator.js'
export * from './timing.js'
export * from './timing-report.js'
export { EnergyCalibration, calibrate, readAbsorption, type CalibrationReference, type CalibrationResult, type CalibrationScan } from './calibration.js'
