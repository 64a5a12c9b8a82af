/** Plans: stubs, wrappers, step scans and the generic fly plan (docs/plans.md). The folder's only public entry. */
export {
  absSet, relSet, mv, mvWith, mvr, locate, wait, triggerAndRead, readOnce, stage, unstage, stageAll, unstageAll,
  openRun, closeRun, checkpoint, sleep, declareStream, prepare, kickoff, complete, collect, oneNdStep, newGroup
} from './stubs.js'
export type { Readings } from './stubs.js'
export { finalizeWrapper, stageWrapper, runWrapper } from './wrappers.js'
export type { PlanSource } from './wrappers.js'
export { count, scan, relScan, listScan, gridScan, gridPoints } from './scans.js'
export type { Motor, PlanMetadata, ScanSpec, ListScanSpec, GridAxis } from './scans.js'
export { flyAndCollect, collectWhileCompleting } from './fly.js'
export { tomoFly, xasFly, darkFlat, energyCalibration, roiStreamName, FLY_FLUSH_PERIOD_S, type TomoFlyArgs, type XasFlyArgs, type DarkFlatArgs, type EnergyCalibrationArgs } from './tst.js'
export type { FlyOptions } from './fly.js'
export { planCatalog, findCatalogPlan, parsePlanArgs, planUsage, describeParam, catalogText, kebabCase, type CatalogPlan, type PlanParam, type ParamKind, type PlanArgs, type PlanArgValue, type DeviceResolver, type NamedObject } from './catalog.js'
