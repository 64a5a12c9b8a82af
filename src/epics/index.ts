/** EPICS devices built from Channel Access signals (docs/devices.md, "EpicsMotor"). The folder's only public entry. */
export { EpicsMotor, type EpicsMotorOptions } from './motor.js'
export {
  checkFlyMotorInfo, flyVelocity, runUpDistance, flyMotion, moveTimeoutMs, type FlyMotorInfo, type FlyMotion
} from './fly-motor-info.js'
